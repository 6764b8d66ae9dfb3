//! Joining child calls: a function starts several and waits for all of them
//! (what `futures::join!` and `join_all` do, without the dependency).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Runs two child calls together; both results, when both are done.
///
/// ```
/// # async fn demo() {
/// let (a, b) = crucial::store::join(async { 1 }, async { "two" }).await;
/// assert_eq!((a, b), (1, "two"));
/// # }
/// ```
pub async fn join<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let (mut a, mut b) = (std::pin::pin!(a), std::pin::pin!(b));
    let (mut ra, mut rb) = (None, None);
    std::future::poll_fn(|cx| {
        if ra.is_none() {
            if let Poll::Ready(v) = a.as_mut().poll(cx) {
                ra = Some(v);
            }
        }
        if rb.is_none() {
            if let Poll::Ready(v) = b.as_mut().poll(cx) {
                rb = Some(v);
            }
        }
        if ra.is_some() && rb.is_some() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    (
        ra.expect("polled to completion"),
        rb.expect("polled to completion"),
    )
}

/// Runs every child call of `calls` together; their results in order.
///
/// ```
/// # async fn demo() {
/// let squares = crucial::store::join_all((1..4).map(|n| async move { n * n })).await;
/// assert_eq!(squares, [1, 4, 9]);
/// # }
/// ```
pub async fn join_all<F: Future>(calls: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut pending: Vec<Pin<Box<F>>> = calls.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx: &mut Context<'_>| {
        let mut all = true;
        for (future, slot) in pending.iter_mut().zip(done.iter_mut()) {
            if slot.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(v) => *slot = Some(v),
                    Poll::Pending => all = false,
                }
            }
        }
        if all {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    done.into_iter()
        .map(|v| v.expect("polled to completion"))
        .collect()
}
