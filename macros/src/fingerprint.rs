//! Signature fingerprints: a stable 64-bit hash of a method's shape.
//!
//! A client and a server built from different versions of a type compare these
//! numbers, so a changed signature is reported as "incompatible method" instead
//! of decoding garbage.

use proc_macro2::{Delimiter, TokenStream, TokenTree};
use quote::ToTokens;

/// FNV-1a over the text, 64-bit. Stable across compiler versions, unlike `DefaultHasher`.
pub fn fnv1a(text: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Canonical text of a type or other syntax node, independent of formatting:
/// a space only between two words and after commas (`Result<u8, Vec<String>>`).
pub fn canonical(node: &impl ToTokens) -> String {
    let mut out = String::new();
    write_tokens(node.to_token_stream(), &mut out);
    out
}

fn write_tokens(tokens: TokenStream, out: &mut String) {
    for token in tokens {
        match token {
            TokenTree::Group(group) => {
                let (open, close) = match group.delimiter() {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::Brace => ("{", "}"),
                    Delimiter::None => ("", ""),
                };
                out.push_str(open);
                write_tokens(group.stream(), out);
                out.push_str(close);
            }
            TokenTree::Ident(_) | TokenTree::Literal(_) => {
                if out.ends_with(|c: char| c.is_alphanumeric() || c == '_') {
                    out.push(' ');
                }
                out.push_str(&token.to_string());
            }
            TokenTree::Punct(punct) => {
                out.push(punct.as_char());
                if punct.as_char() == ',' {
                    out.push(' ');
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_reference_vectors() {
        assert_eq!(fnv1a(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a("a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn canonical_ignores_formatting() {
        let a: syn::Type = syn::parse_str("Vec< (u8,String) >").unwrap();
        let b: syn::Type = syn::parse_str("Vec<(u8, String)>").unwrap();
        assert_eq!(canonical(&a), canonical(&b));
        assert_eq!(canonical(&a), "Vec<(u8, String)>");
        let r: syn::Type = syn::parse_str("Result<&'a mut dyn Send, ()>").unwrap();
        assert_eq!(canonical(&r), "Result<&'a mut dyn Send, ()>");
    }
}
