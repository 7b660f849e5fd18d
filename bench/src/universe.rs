//! `ticker-bench universe`: prints a generated symbol universe as a settings file, for
//! benchmarks at the size of a real exchange (`--config` it after `TICKER_ENV=bench`).

use std::io::Write;

use clap::Args;

use crate::BenchError;

#[derive(Args)]
pub struct UniverseArgs {
    /// How many symbols.
    #[arg(long, default_value_t = 8000)]
    symbols: usize,
    /// The same seed prints the same universe.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

pub fn run(args: UniverseArgs) -> Result<(), BenchError> {
    if args.symbols == 0 || args.symbols > usize::from(u16::MAX) {
        return Err(BenchError::Usage(
            "--symbols must be from 1 to 65535".into(),
        ));
    }
    let symbols = ticker::feed::generated::universe(args.symbols, args.seed);
    let text = format!(
        "# {} generated symbols (ticker-bench universe --symbols {} --seed {})\n{}",
        args.symbols,
        args.symbols,
        args.seed,
        ticker::feed::generated::to_toml(&symbols)
    );
    std::io::stdout().write_all(text.as_bytes())?;
    Ok(())
}
