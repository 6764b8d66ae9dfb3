//! Executors end to end: the `process` executor runs the real function binary
//! (`examples/fixture-function.rs`) under the local Lambda host, with a real node
//! process for shared objects.

mod common;

use common::ServerProcess;
use crucial::{Error, Executor, Invocation, ProcessExecutor, SpawnOptions};
use crucial_lambda_host::FunctionSpec;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The fixture function binary (`examples/fixture-function.rs`).
fn fixture() -> PathBuf {
    common::example_binary("fixture-function")
}

fn executor(timeout: Duration, concurrency: usize) -> ProcessExecutor {
    let mut spec = FunctionSpec::new("fixture", fixture());
    spec.timeout = timeout;
    spec.concurrency = concurrency;
    ProcessExecutor::with_spec(spec).unwrap()
}

fn invocation(thread: &str, args: Vec<u8>, server: &ServerProcess) -> Invocation {
    Invocation {
        thread: format!("fixture_function::{thread}"),
        args,
        servers: vec![server.addr.clone()],
        attempt: 1,
        token: None,
        tls: None,
    }
}

fn run(executor: &ProcessExecutor, invocation: Invocation) -> Result<Vec<u8>, String> {
    executor.start(invocation, None).unwrap().join()
}

fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    crucial_protocol::codec::encode(value).unwrap()
}

/// A cloud thread of this test binary, for calling the function side directly.
#[crucial::cloud_thread]
fn triple(n: u64) -> u64 {
    n * 3
}

#[test]
fn the_function_dispatch_is_a_plain_async_fn() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ok = rt.block_on(crucial::__private::function::dispatch(Invocation {
        thread: triple::NAME.to_string(),
        args: encode(&(5u64,)),
        servers: vec![],
        attempt: 1,
        token: None,
        tls: None,
    }));
    assert_eq!(
        crucial_protocol::codec::decode::<u64>(&ok.unwrap()).unwrap(),
        15
    );
    let bad = rt.block_on(crucial::__private::function::dispatch(Invocation {
        thread: triple::NAME.to_string(),
        args: vec![0xff],
        servers: vec![],
        attempt: 1,
        token: None,
        tls: None,
    }));
    assert!(bad.unwrap_err().contains("cannot decode arguments"));
    // The Lambda event round-trips through JSON and base64.
    let event = crucial::__private::function::LambdaPayload::from_invocation(&Invocation {
        thread: "t".into(),
        args: vec![1, 2, 255],
        servers: vec!["127.0.0.1:1".into()],
        attempt: 2,
        token: None,
        tls: None,
    });
    let json = serde_json::to_string(&event).unwrap();
    assert!(json.contains("\"args\":\"AQL/\""), "{json}");
    let back: crucial::__private::function::LambdaPayload = serde_json::from_str(&json).unwrap();
    assert_eq!(back.into_invocation().unwrap().args, vec![1, 2, 255]);
}

#[test]
fn values_and_error_values_come_back_and_environments_are_reused() {
    let server = ServerProcess::crucial_server(&[]);
    let executor = executor(Duration::from_secs(10), 4);
    for n in 0..5u64 {
        let out = run(&executor, invocation("double", encode(&(n,)), &server)).unwrap();
        assert_eq!(crucial_protocol::codec::decode::<u64>(&out).unwrap(), 2 * n);
    }
    assert_eq!(
        executor.cold_starts(),
        1,
        "sequential invocations reuse one warm process"
    );
    let out = run(
        &executor,
        invocation("refuse", encode(&("no".to_string(),)), &server),
    )
    .unwrap();
    assert_eq!(
        crucial_protocol::codec::decode::<Result<u64, String>>(&out).unwrap(),
        Err("no".to_string())
    );
    let e = run(&executor, invocation("nope", encode(&()), &server)).unwrap_err();
    assert!(
        e.contains("CloudThreadFailed") && e.contains("no cloud thread named"),
        "{e}"
    );
}

#[test]
fn a_panic_surfaces_with_its_message() {
    let server = ServerProcess::crucial_server(&[]);
    let executor = executor(Duration::from_secs(10), 2);
    let e = run(&executor, invocation("boom", encode(&()), &server)).unwrap_err();
    assert!(
        e.contains("CloudThreadFailed") && e.contains("panicked: boom"),
        "{e}"
    );
    // The environment survived the panic (caught in the function) and is reused.
    run(&executor, invocation("double", encode(&(1u64,)), &server)).unwrap();
    assert_eq!(executor.cold_starts(), 1);
}

#[test]
fn a_process_exit_is_runtime_exit_error_and_the_next_call_starts_cold() {
    let server = ServerProcess::crucial_server(&[]);
    let executor = executor(Duration::from_secs(10), 2);
    let e = run(&executor, invocation("exit", encode(&(3i32,)), &server)).unwrap_err();
    assert!(
        e.contains("Runtime.ExitError") && e.contains("exit status: 3"),
        "{e}"
    );
    run(&executor, invocation("double", encode(&(1u64,)), &server)).unwrap();
    assert_eq!(executor.cold_starts(), 2);
}

#[test]
fn an_overrun_is_sandbox_timedout_and_kills_the_environment() {
    let server = ServerProcess::crucial_server(&[]);
    let executor = executor(Duration::from_millis(700), 2);
    // A 5 s call under a 0.7 s limit: the host answers Sandbox.Timedout (had the
    // limit not been enforced, the call would have succeeded).
    let e = run(
        &executor,
        invocation("sleep", encode(&(5_000u64,)), &server),
    )
    .unwrap_err();
    assert!(
        e.contains("Sandbox.Timedout") && e.contains("timed out after 0.70 seconds"),
        "{e}"
    );
    let out = run(&executor, invocation("sleep", encode(&(10u64,)), &server)).unwrap();
    assert_eq!(crucial_protocol::codec::decode::<u64>(&out).unwrap(), 10);
    assert_eq!(
        executor.cold_starts(),
        2,
        "the timed-out environment was destroyed"
    );
}

#[test]
fn concurrent_invocations_stay_within_the_concurrency_limit() {
    let server = ServerProcess::crucial_server(&[]);
    let executor = executor(Duration::from_secs(10), 2);
    let start = Instant::now();
    let running: Vec<_> = (0..6)
        .map(|_| {
            executor
                .start(invocation("sleep", encode(&(300u64,)), &server), None)
                .unwrap()
        })
        .collect();
    let mut most = 0;
    while start.elapsed() < Duration::from_millis(500) {
        most = most.max(executor.environments());
        std::thread::sleep(Duration::from_millis(10));
    }
    for r in running {
        assert_eq!(
            crucial_protocol::codec::decode::<u64>(&r.join().unwrap()).unwrap(),
            300
        );
    }
    assert!(most <= 2, "{most} environments for a limit of 2");
    // Six calls, two environments started: the other four calls waited for a
    // warm environment instead of starting a third.
    assert_eq!(executor.cold_starts(), 2);
}

#[test]
fn a_thread_failing_its_first_attempt_is_retried_with_the_same_input() {
    let server = ServerProcess::crucial_server(&[]);
    crucial::Context::new(
        crucial::Config::new()
            .server(server.addr.clone())
            .executor(executor(Duration::from_secs(10), 2)),
    )
    .unwrap()
    .install()
    .unwrap();
    let retried = SpawnOptions::default()
        .attempts(2)
        .backoff(Duration::from_millis(10));
    let runs: crucial::Result<u64> = crucial::spawn_by_name(
        "fixture_function::flaky",
        &("k".to_string(),),
        Some(&retried),
    )
    .join()
    .unwrap();
    assert_eq!(runs.unwrap(), 2, "ran twice: failed, then succeeded");

    // Without retries the same failure surfaces, naming the thread and attempt.
    let once = SpawnOptions::default();
    let e = crucial::spawn_by_name::<_, crucial::Result<u64>>(
        "fixture_function::flaky",
        &("k2".to_string(),),
        Some(&once),
    )
    .join()
    .unwrap_err();
    assert!(
        matches!(&e, Error::Thread { thread, attempt: 1, message }
            if thread == "fixture_function::flaky" && message.contains("first attempt fails on purpose")),
        "{e}"
    );
    // With three attempts of a thread that always panics, the last attempt is reported.
    let thrice = SpawnOptions::default()
        .attempts(3)
        .backoff(Duration::from_millis(1));
    let e = crucial::spawn_by_name::<_, u64>("fixture_function::boom", &(), Some(&thrice))
        .join()
        .unwrap_err();
    assert!(
        matches!(&e, Error::Thread { attempt: 3, message, .. } if message.contains("last of 3 attempts")),
        "{e}"
    );
}

/// The same failures through the AWS SDK's `Invoke` against the local host.
#[cfg(feature = "lambda")]
mod lambda {
    use super::*;
    use crucial::LambdaExecutor;
    use crucial_lambda_host::LambdaHost;

    fn rig(timeout: Duration, concurrency: usize) -> (LambdaHost, LambdaExecutor) {
        let mut spec = FunctionSpec::new("fixture", fixture());
        spec.timeout = timeout;
        spec.concurrency = concurrency;
        let host = LambdaHost::start("127.0.0.1:0", vec![spec]).unwrap();
        std::env::set_var("AWS_ACCESS_KEY_ID", "local");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "local");
        let executor = LambdaExecutor::new(
            "fixture",
            "us-east-1",
            Some(format!("http://{}", host.addr)),
        )
        .unwrap();
        (host, executor)
    }

    fn call(executor: &LambdaExecutor, invocation: Invocation) -> Result<Vec<u8>, String> {
        executor.start(invocation, None).unwrap().join()
    }

    #[test]
    fn success_error_panic_exit_and_timeout_through_the_sdk() {
        let server = ServerProcess::crucial_server(&[]);
        let (host, executor) = rig(Duration::from_millis(800), 4);
        let out = call(&executor, invocation("double", encode(&(21u64,)), &server)).unwrap();
        assert_eq!(crucial_protocol::codec::decode::<u64>(&out).unwrap(), 42);
        let e = call(&executor, invocation("boom", encode(&()), &server)).unwrap_err();
        assert!(
            e.contains("CloudThreadFailed") && e.contains("panicked: boom"),
            "{e}"
        );
        let e = call(&executor, invocation("exit", encode(&(4i32,)), &server)).unwrap_err();
        assert!(e.contains("Runtime.ExitError"), "{e}");
        let e = call(
            &executor,
            invocation("sleep", encode(&(5_000u64,)), &server),
        )
        .unwrap_err();
        assert!(e.contains("Sandbox.Timedout"), "{e}");
        // Unknown function: the SDK's ResourceNotFoundException, not a hang.
        let missing =
            LambdaExecutor::new("nope", "us-east-1", Some(format!("http://{}", host.addr)))
                .unwrap();
        let e = call(&missing, invocation("double", encode(&(1u64,)), &server)).unwrap_err();
        assert!(
            e.contains("ResourceNotFound") || e.contains("Function not found"),
            "{e}"
        );
    }

    #[test]
    fn the_sdk_does_not_retry_behind_our_back() {
        let server = ServerProcess::crucial_server(&[]);
        let (_host, executor) = rig(Duration::from_secs(10), 2);
        let e = call(
            &executor,
            invocation("flaky", encode(&("sdk".to_string(),)), &server),
        )
        .unwrap_err();
        assert!(e.contains("first attempt fails on purpose"), "{e}");
        let client = server.client();
        assert_eq!(
            client.open::<crucial::AtomicI64>("sdk").load().unwrap(),
            1,
            "the function ran exactly once"
        );
    }

    #[test]
    fn invocations_run_concurrently_up_to_the_limit() {
        let server = ServerProcess::crucial_server(&[]);
        let (host, executor) = rig(Duration::from_secs(10), 3);
        let running: Vec<_> = (0..3)
            .map(|_| {
                executor
                    .start(invocation("sleep", encode(&(400u64,)), &server), None)
                    .unwrap()
            })
            .collect();
        for r in running {
            r.join().unwrap();
        }
        // Three concurrent calls needed three environments (no timing asserted).
        assert_eq!(host.cold_starts("fixture"), 3);
        // Over the limit, Lambda throttles: the fourth concurrent call gets 429.
        let running: Vec<_> = (0..4)
            .map(|_| {
                executor
                    .start(invocation("sleep", encode(&(400u64,)), &server), None)
                    .unwrap()
            })
            .collect();
        let results: Vec<_> = running.into_iter().map(|r| r.join()).collect();
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 3);
        let throttled = results.iter().find_map(|r| r.as_ref().err()).unwrap();
        assert!(
            throttled.contains("TooManyRequests") || throttled.contains("Rate Exceeded"),
            "{throttled}"
        );
    }
}
