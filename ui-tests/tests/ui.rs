//! One rule per file: every misuse of a macro is a clear compile error spanned on
//! the offending token. Refresh the expected output with `TRYBUILD=overwrite`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/fail/*.rs");
    t.pass("tests/pass/*.rs");
}
