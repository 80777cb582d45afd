//! `pos`: the one binary of the POS settlement mesh. See `pos --help`.

/// Every call allocates and frees many small buffers (HTTP/2 frames, messages, rows);
/// mimalloc does that with less CPU than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let matches = pos::cli::command().get_matches();
    pos_common::telemetry::init(pos::cli::json_logs(&matches));
    match pos::cli::run(matches).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("pos: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
