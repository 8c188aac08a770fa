//! Live mode's parts: the link proxy's partition and hold, the coordinator
//! link's small buffers, placeholder expansion into a config our agent
//! accepts, and runs whose agent exits early or never connects.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use simctl::live::adapter::Adapter;
use simctl::live::driver::READY_RULE;
use simctl::live::proxy::{self, Buffers, Link};
use simctl::live::run::{LiveOptions, run_one_live};
use simctl::live::vars::{Dirs, Endpoints, RunPaths, backend_vars, run_vars};
use simctl::live::world::{COORDINATOR_SOCKET_BUFFER_BYTES, LiveWorld};
use simctl::runner::RunOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

use crate::support::{small_fixture, stderr, temp_dir, write};

/// How long a test waits for bytes that must not come (or must).
const QUIET_MS: u64 = 200;
const ARRIVE_MS: u64 = 5_000;

/// An echo server on loopback; returns its address.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = stream.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// Writes `msg` and reads it back within `ms`, or `None`.
async fn round_trip(stream: &mut TcpStream, msg: &[u8], ms: u64) -> Option<Vec<u8>> {
    stream.write_all(msg).await.ok()?;
    let mut buf = vec![0_u8; msg.len()];
    match timeout(Duration::from_millis(ms), stream.read_exact(&mut buf)).await {
        Ok(Ok(_)) => Some(buf),
        _ => None,
    }
}

/// A partition wedges open connections for good (nothing passes, even after repair) and lets new ones through once repaired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_wedges_open_connections_and_repair_admits_new_ones() {
    let link = Link::new();
    let proxy = proxy::start(echo_server().await, link.clone(), Buffers::default()).unwrap();
    let mut old = TcpStream::connect(proxy.addr).await.unwrap();
    assert_eq!(
        round_trip(&mut old, b"ping", ARRIVE_MS).await.as_deref(),
        Some(&b"ping"[..])
    );
    link.partition();
    assert_eq!(round_trip(&mut old, b"lost", QUIET_MS).await, None);
    let mut during = TcpStream::connect(proxy.addr).await.unwrap();
    assert_eq!(round_trip(&mut during, b"void", QUIET_MS).await, None);
    link.repair();
    assert_eq!(
        round_trip(&mut old, b"still", QUIET_MS).await,
        None,
        "a wedged connection stays wedged"
    );
    let mut new = TcpStream::connect(proxy.addr).await.unwrap();
    assert_eq!(
        round_trip(&mut new, b"fresh", ARRIVE_MS).await.as_deref(),
        Some(&b"fresh"[..])
    );
}

/// A hold delays bytes and new connections until release, then delivers everything in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_delays_until_release_and_loses_nothing() {
    let link = Link::new();
    let proxy = proxy::start(echo_server().await, link.clone(), Buffers::default()).unwrap();
    let mut open = TcpStream::connect(proxy.addr).await.unwrap();
    assert!(round_trip(&mut open, b"a", ARRIVE_MS).await.is_some());
    link.hold();
    assert_eq!(round_trip(&mut open, b"held", QUIET_MS).await, None);
    let mut opened_during = TcpStream::connect(proxy.addr).await.unwrap();
    assert_eq!(round_trip(&mut opened_during, b"later", QUIET_MS).await, None);
    link.release();
    let mut buf = [0_u8; 4];
    timeout(Duration::from_millis(ARRIVE_MS), open.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"held");
    let mut buf = [0_u8; 5];
    timeout(Duration::from_millis(ARRIVE_MS), opened_during.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"later");
}

/// A crash of the agent's end passes no FIN; the peer learns of the close only at restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_hides_the_close_until_restart() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let link = Link::new();
    let proxy = proxy::start(listener.local_addr().unwrap(), link.clone(), Buffers::default()).unwrap();
    let agent = TcpStream::connect(proxy.addr).await.unwrap();
    let (mut peer, _) = listener.accept().await.unwrap();
    link.crash();
    drop(agent);
    let mut buf = [0_u8; 1];
    let early = timeout(Duration::from_millis(QUIET_MS), peer.read(&mut buf)).await;
    assert!(early.is_err(), "the peer saw the crashed end close: {early:?}");
    link.restart();
    let late = timeout(Duration::from_millis(ARRIVE_MS), peer.read(&mut buf)).await;
    assert!(matches!(late, Ok(Ok(0))), "{late:?}");
}

/// With the coordinator's small buffers, a reader that stops reading blocks the writer within a few tens of KiB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_buffers_make_a_read_pause_bite() {
    let listener = proxy::loopback_listener(Some(COORDINATOR_SOCKET_BUFFER_BYTES)).unwrap();
    let small = Buffers {
        downstream_recv_bytes: Some(COORDINATOR_SOCKET_BUFFER_BYTES),
        upstream_send_bytes: Some(COORDINATOR_SOCKET_BUFFER_BYTES),
    };
    let proxy = proxy::start(listener.local_addr().unwrap(), Link::new(), small).unwrap();
    let mut writer = TcpStream::connect(proxy.addr).await.unwrap();
    let (_never_read, _) = listener.accept().await.unwrap();
    let chunk = [7_u8; 1024];
    let mut written = 0_usize;
    while let Ok(Ok(())) = timeout(Duration::from_millis(QUIET_MS), writer.write_all(&chunk)).await {
        written += chunk.len();
        assert!(written < 4 << 20, "4 MiB written and the writer never blocked");
    }
    let sndbuf = socket2::SockRef::from(&writer).send_buffer_size().unwrap();
    eprintln!(
        "writes blocked after {} KiB (the writer's own send buffer: {} KiB)",
        written / 1024,
        sndbuf / 1024
    );
    assert!(written < 512 << 10, "{written} bytes before blocking");
}

/// Our adapter expands, for the fixture scenario, into a config our agent loads and validates.
#[test]
fn provider_agent_adapter_expands_into_a_valid_agent_config() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let adapter = Adapter::load(&root.join("agents/provider-agent.toml")).unwrap();
    let scenario = simctl::scenario::load(&small_fixture()).unwrap();
    let backend: SocketAddr = "127.0.0.1:4201".parse().unwrap();
    let endpoints = Endpoints {
        coordinator: "127.0.0.1:4100".parse().unwrap(),
        backends: vec![("vllm-1".into(), backend)],
    };
    let paths = RunPaths::under(Path::new("/tmp/run"), &adapter.config.file);
    let dirs = Dirs {
        exe_dir: "/bin".into(),
        adapter_dir: root.join("agents"),
    };
    let run = run_vars(&scenario, 7, &endpoints, &paths, &dirs);
    let backends = vec![backend_vars(&scenario.backends[0], backend, &scenario, "vllm")];
    let expanded = adapter.expand_all("provider-agent.toml", &run, &backends).unwrap();
    let config = provider_agent::config::AgentConfig::from_toml_str(&expanded.config, "agent.toml").unwrap();
    config.validate(true).unwrap();
    assert_eq!(config.coordinator.url, "ws://127.0.0.1:4100/");
    assert_eq!(config.backends[0].url.as_deref(), Some("http://127.0.0.1:4201"));
    assert_eq!(config.backends[0].models, Some(vec!["sim-model".to_owned()]));
    assert_eq!(config.limits.max_concurrent, 2);
    assert_eq!(config.session.idle_timeout_ms, 3_000);
    assert_eq!(config.identity.key_path, Path::new("/tmp/run/state/identity.key"));
    assert_eq!(expanded.command[0], "/bin/provider-agent");
}

/// A toy adapter running `command` (no placeholders needed) with the given start-up bound.
fn toy_adapter(dir: &Path, command: &str, ready_within_ms: u64) -> Adapter {
    let text = format!(
        "name = \"toy\"\ncommand = {command}\nready_within_ms = {ready_within_ms}\n\
         [config]\nfile = \"toy.toml\"\ntemplate = \"coordinator = '${{coordinator_url}}'\"\n"
    );
    Adapter::load(&write(dir, "toy-agent.toml", &text)).unwrap()
}

fn live_run(dir: &Path, adapter: Adapter) -> simctl::runner::RunReport {
    let scenario = simctl::scenario::load(&small_fixture()).unwrap();
    let live = LiveOptions {
        adapter,
        live_dir: dir.join("runs"),
        exe_dir: dir.to_path_buf(),
    };
    run_one_live("small.toml", &scenario, 7, &live, RunOptions::default())
}

/// An agent that exits before reaching steady state fails the run with that reason, its output kept.
#[test]
fn an_agent_that_exits_early_fails_the_run() {
    let dir = temp_dir("live-exits");
    let adapter = toy_adapter(
        &dir,
        r#"["sh", "-c", "echo starting; echo broken >&2; exit 3"]"#,
        10_000,
    );
    let report = live_run(&dir, adapter);
    assert!(!report.passed());
    let violation = &report.verdict.violations[0];
    assert_eq!(violation.rule, READY_RULE);
    assert!(
        violation.detail.starts_with("the agent exited with status 3"),
        "{}",
        violation.detail
    );
    let live = report.live.as_ref().unwrap();
    let process = &live.processes[0];
    assert_eq!(std::fs::read_to_string(&process.stdout).unwrap(), "starting\n");
    assert_eq!(std::fs::read_to_string(&process.stderr).unwrap(), "broken\n");
    assert!(report.trace_hash.is_empty(), "a live run prints no trace hash");
    let config = std::fs::read_to_string(&live.config).unwrap();
    assert!(config.starts_with("coordinator = 'ws://127.0.0.1:"), "{config}");
}

/// An agent that never connects fails the run once ready_within_ms runs out, and is killed.
#[test]
fn an_agent_that_never_connects_fails_the_run() {
    let dir = temp_dir("live-silent");
    let adapter = toy_adapter(&dir, r#"["sleep", "30"]"#, 300);
    let report = live_run(&dir, adapter);
    let violation = &report.verdict.violations[0];
    assert_eq!(violation.rule, READY_RULE);
    assert!(
        violation.detail.contains("did not reach steady state") && violation.detail.contains("= 300"),
        "{}",
        violation.detail
    );
    let process = &report.live.as_ref().unwrap().processes[0];
    assert_eq!(process.end.as_deref(), Some("killed by simctl (SIGKILL)"));
}

/// A scenario whose faults cannot be applied live is refused, naming the fault; `--skip-refused` sets it aside.
#[test]
fn scenarios_with_unappliable_faults_are_refused_by_name() {
    let dir = temp_dir("live-refused");
    let text = std::fs::read_to_string(small_fixture()).unwrap()
        + "\n[[faults]]\nat_ms = 500\naction = \"crash\"\nhost = \"coordinator\"\n";
    let scenario = write(&dir, "crash.toml", &text);
    let adapter = Path::new(env!("CARGO_MANIFEST_DIR")).join("agents/provider-agent.toml");
    let (scenario, adapter) = (scenario.display().to_string(), adapter.display().to_string());
    let output = crate::support::simctl(&["run", &scenario, "--agent", &adapter]);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(
        err.contains("crash.toml: refused in live mode: faults[0] (crash of coordinator at 500 ms)"),
        "{err}"
    );
    let output = crate::support::simctl(&["run", &scenario, "--agent", &adapter, "--skip-refused"]);
    assert_eq!(output.status.code(), Some(2), "nothing left to run");
    assert!(stderr(&output).contains("skipped in live mode"), "{}", stderr(&output));
}

/// Our agent, in-process on real sockets, configured by our adapter for `world`: the future runs it until dropped.
fn in_process_agent(
    world: &LiveWorld,
    scenario: &simctl::scenario::Scenario,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    use provider_agent::run::{AgentDeps, EnvLookup};
    use rand::SeedableRng as _;
    use std::sync::Arc;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let adapter = Adapter::load(&root.join("agents/provider-agent.toml")).unwrap();
    let paths = RunPaths::under(Path::new("/nonexistent/run"), &adapter.config.file);
    let dirs = Dirs {
        exe_dir: "/bin".into(),
        adapter_dir: root.join("agents"),
    };
    let run = run_vars(scenario, 7, &world.endpoints, &paths, &dirs);
    let backends: Vec<_> = (scenario.backends.iter().zip(&world.endpoints.backends))
        .map(|(spec, (_, addr))| backend_vars(spec, *addr, scenario, "vllm"))
        .collect();
    let expanded = adapter.expand_all("provider-agent.toml", &run, &backends).unwrap();
    let config = provider_agent::config::AgentConfig::from_toml_str(&expanded.config, "agent.toml").unwrap();
    let identity = provider_agent::identity::Identity::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(7));
    let (shutdown_tx, shutdown) = tokio::sync::watch::channel(false);
    let env: EnvLookup = Arc::new(|_: &str| None);
    let deps = AgentDeps {
        connector: Arc::new(provider_agent::net::TcpConnector),
        clock: Arc::new(provider_agent::clock::AnchoredClock::new(1_700_000_000_000)),
        rng_seed: 7,
        shutdown,
        observer: Arc::new(provider_agent::observer::NoopObserver),
        env,
        allow_insecure: true,
        provider_ids: Arc::new(provider_agent::provider_id::MemoryStore::default()),
    };
    async move {
        let _keep_running = shutdown_tx;
        let _ = provider_agent::run::run(config, identity, deps).await;
    }
}

/// Script time starts at the agent's first steady state (the coordinator's `StartOn::FirstSession`, awaited, not polled): an agent that connects 1.5 s late loses no job, and its session is at script time 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_time_starts_at_the_agents_first_steady_state() {
    let scenario = simctl::scenario::load(&small_fixture()).unwrap();
    let world = LiveWorld::start(&scenario, 7).unwrap();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(
        world.clock.now_us(),
        0,
        "script time must not run before the agent is up"
    );
    let late_us = (world.base)();
    let agent = tokio::spawn(in_process_agent(&world, &scenario));
    let zero_us = timeout(Duration::from_millis(ARRIVE_MS), world.wait_ready())
        .await
        .unwrap();
    assert!(
        zero_us >= late_us,
        "zero {zero_us} before the agent started at {late_us}"
    );
    assert!(world.clock.now_us() < 1_000_000, "{}", world.clock.now_us());
    // The scripted arrivals run from 200 to 1500 ms of script time.
    world.clock.sleep_until_us(2_500_000).await;
    agent.abort();
    let log = world.log.snapshot();
    assert_eq!(
        log.sessions[0].auth_ok_us,
        Some(0),
        "the first session is script time zero"
    );
    assert!(log.jobs.len() >= 5, "{} jobs", log.jobs.len());
    for job in &log.jobs {
        let sent_us = job
            .sent_us
            .unwrap_or_else(|| panic!("job {} found no session", job.index));
        assert!(
            sent_us >= 200_000,
            "job {} sent at {sent_us} µs, before its arrival",
            job.index
        );
    }
}

/// `out_of_capacity_truthful` as a live run judges it (its external half alone) on a hand-made trace with no agent event.
fn judged_live(trace: &simctl::trace::Trace) -> simctl::oracle::Verdict {
    use simctl::oracle::{OracleConfig, RULES};
    let others: std::collections::BTreeSet<String> = (RULES.iter())
        .filter(|r| r.name != "out_of_capacity_truthful")
        .map(|r| r.name.to_owned())
        .collect();
    let view = simctl::trace::TraceView::build(&trace.events);
    simctl::live::run::judge_live(&view, &OracleConfig::for_handmade_traces(), &others)
}

/// Two slots; jobs a and c run; b arrives and is turned away. `a_answer_ms` is when the coordinator reads a's job_done.
fn two_running_then_rejected(a_answer_ms: u64) -> simctl::trace::Trace {
    simctl::trace::handmade::TraceBuilder::new()
        .session(0, 1)
        .job(10, "a", 1, 60_000)
        .backend(11, Some(a_answer_ms - 1), "a", b"x", "completed")
        .job(12, "c", 1, 60_000)
        .backend(13, Some(500), "c", b"y", "completed")
        .chunk(14, "a", 1, b"x")
        .chunk(15, "c", 1, b"y")
        .job(20, "b", 1, 60_000)
        .error(22, "b", 1, "out_of_capacity")
        .done(a_answer_ms, "a", 1)
        .done(501, "c", 1)
        .build()
}

/// Live, out_of_capacity_truthful is judged (not listed as not judged) from the coordinator's log alone: a rejection while the coordinator had max_concurrent jobs in flight between sending the job and reading the answer passes; one after a slot's answer was already read is caught. The whole rule would call the first unfounded, for want of the agent's admission events.
#[test]
fn out_of_capacity_truthful_runs_its_external_half_live() {
    let justified = two_running_then_rejected(30);
    let verdict = judged_live(&justified);
    assert!(verdict.checked.contains(&"out_of_capacity_truthful"), "{verdict:?}");
    assert!(!verdict.not_judged.contains(&"out_of_capacity_truthful"));
    assert_eq!(verdict.violations, [], "a full agent's rejection is justified");
    assert_eq!(verdict.tallies[0].judged, 1);
    let whole = simctl::oracle::judge(
        &justified,
        &simctl::oracle::OracleConfig::for_handmade_traces(),
        &(simctl::oracle::RULES.iter())
            .filter(|r| r.name != "out_of_capacity_truthful")
            .map(|r| r.name.to_owned())
            .collect(),
    );
    assert!(
        !whole.violations.is_empty(),
        "the agent-event half needs admission events"
    );

    let unfounded = two_running_then_rejected(18);
    let verdict = judged_live(&unfounded);
    assert_eq!(verdict.violations.len(), 1, "{:?}", verdict.violations);
    let violation = &verdict.violations[0];
    assert_eq!(
        (violation.rule, violation.job.as_deref()),
        ("out_of_capacity_truthful", Some("b"))
    );
    assert!(
        violation.detail.contains("at most 1 of 2 slots"),
        "{}",
        violation.detail
    );
}

/// A scenario that declares `[live] skip` is set aside with its reason, not refused, even when its faults could not be applied live.
#[test]
fn a_scenario_declaring_live_skip_is_set_aside_with_its_reason() {
    let dir = temp_dir("live-declared-skip");
    let text = std::fs::read_to_string(small_fixture()).unwrap()
        + "\n[[faults]]\nat_ms = 500\naction = \"crash\"\nhost = \"coordinator\"\n\
           [live]\nskip = \"crashes the coordinator\"\n";
    let scenario = write(&dir, "declared.toml", &text);
    let adapter = Path::new(env!("CARGO_MANIFEST_DIR")).join("agents/provider-agent.toml");
    let (scenario, adapter) = (scenario.display().to_string(), adapter.display().to_string());
    let output = crate::support::simctl(&["run", &scenario, "--agent", &adapter]);
    let err = stderr(&output);
    assert!(
        err.contains("declared.toml: skipped in live mode ([live] skip): crashes the coordinator"),
        "{err}"
    );
    assert!(!err.contains("refused"), "{err}");
    assert_eq!(output.status.code(), Some(2), "nothing left to run: {err}");
}

/// The memory sampler reads a live process's resident set periodically and inside read pauses, and stops reading it when told it is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sampler_reads_a_process_rss_in_and_out_of_read_pauses() {
    use simctl::live::clock::ScriptClock;
    use simctl::live::memory::Sampler;
    if !cfg!(target_os = "linux") {
        return;
    }
    let text = std::fs::read_to_string(small_fixture()).unwrap()
        + "\n[[coordinator.read_pauses]]\nstart_ms = 300\nend_ms = 700\n";
    let scenario = simctl::scenario::parse("paused.toml", &text).unwrap();
    let script = scenario.coordinator.clone();
    let log = mock_coordinator::Log::new();
    let coordinator = mock_coordinator::Coordinator::new(script, 7, mock_coordinator::tokio_clock(), log).unwrap();
    let mut child = tokio::process::Command::new("sleep")
        .arg("30")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let (target, watched) = tokio::sync::watch::channel(child.id().map(|pid| (pid, 1)));
    let sampler = Sampler::start(&scenario, ScriptClock::of(&coordinator), watched);
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    target.send_replace(None);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let samples = sampler.finish();
    let _ = child.kill().await;
    assert!(
        samples
            .iter()
            .all(|s| s.rss_bytes > 0 && s.incarnation == 1 && s.at_us < 1_200_000)
    );
    let paused = samples.iter().filter(|s| s.reads_paused).count();
    assert!(paused >= 2, "the pause's middle and end are sampled: {samples:?}");
    assert!(samples.len() >= 5, "every 250 ms and in the pause: {samples:?}");
}
