//! A scenario file: several scenarios against one shared stack, each reported as a test of its
//! own (the file is a `harness = false` test run by `libtest-mimic`), so that the first failure
//! does not hide the others. The stack comes up once before the first scenario and is torn down
//! after the last, also when a scenario or the start-up panicked; the scenarios run one at a
//! time, in the order given. `--list` lists them without starting anything; a filter (`cargo
//! test --test NAME -- SCENARIO`) runs only the scenarios it selects, on the same shared stack.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;

use futures::FutureExt as _;
use libtest_mimic::{Arguments, Failed, Trial};

/// A scenario's run: given the shared context, a future that panics on a failed assertion.
type Run<C> = Box<dyn FnOnce(Arc<C>) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// One scenario: a name (the test's) and what it does with the shared context.
pub struct Scenario<C> {
    name: &'static str,
    run: Run<C>,
}

/// The scenario `name`, which runs `run` with the shared context.
pub fn scenario<C, F, Fut>(name: &'static str, run: F) -> Scenario<C>
where
    F: FnOnce(Arc<C>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    Scenario {
        name,
        run: Box::new(move |ctx| Box::pin(run(ctx))),
    }
}

/// The text of a panic's payload.
fn panic_text(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "panicked".to_owned())
}

/// Runs `scenarios` against the context `setup` makes (which launches the stack and owns it:
/// dropping the context tears the stack down), and returns the run's exit code.
pub fn run<C, S>(setup: S, scenarios: Vec<Scenario<C>>) -> ExitCode
where
    C: Send + Sync + 'static,
    S: Future<Output = C>,
{
    let mut args = Arguments::from_args();
    // One shared stack: the scenarios take turns, in order.
    args.test_threads = Some(1);
    if args.list {
        let trials = scenarios
            .into_iter()
            .map(|s| Trial::test(s.name, || Ok(())))
            .collect();
        return libtest_mimic::run(&args, trials).exit_code();
    }
    let runtime = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime"),
    );
    // A panic while launching unwinds through the stack's guard inside `setup`, which tears
    // down what was started; every scenario then fails with the reason.
    let ctx = runtime
        .block_on(AssertUnwindSafe(setup).catch_unwind())
        .map(Arc::new)
        .map_err(|payload| {
            format!(
                "the shared stack did not come up: {}",
                panic_text(&*payload)
            )
        });
    let trials = scenarios
        .into_iter()
        .map(|s| {
            let (runtime, ctx) = (runtime.clone(), ctx.clone());
            Trial::test(s.name, move || {
                let ctx = ctx.map_err(Failed::from)?;
                eprintln!("== {}", s.name);
                let scenario = (s.run)(ctx);
                runtime
                    .block_on(AssertUnwindSafe(scenario).catch_unwind())
                    .map_err(|payload| Failed::from(panic_text(&*payload)))
            })
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    // The last reference to the context: the stack is torn down here, passed or failed.
    drop(ctx);
    drop(runtime);
    conclusion.exit_code()
}
