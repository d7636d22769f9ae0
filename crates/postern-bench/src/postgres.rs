//! The private PostgreSQL server the `--instances` benchmark's instances share: a fresh
//! database per run, and the CPU time the server's processes use.

use std::path::Path;

use anyhow::Context as _;
use postern_testkit::pg::PgServer;
use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::instance::SharedStore;

/// A running private server (stopped by postern-testkit's reaper when the benchmark ends).
pub struct Postgres {
    server: PgServer,
    /// The postmaster: every server process is its child.
    postmaster: u32,
}

impl Postgres {
    /// initdb and start (postern-testkit's settings: loopback, `fsync=off`).
    pub async fn start() -> anyhow::Result<Postgres> {
        let server = PgServer::start().map_err(anyhow::Error::msg)?;
        let pool = PgPool::connect(&server.admin_url()).await?;
        // This connection's backend is a child of the postmaster.
        let (backend,): (i32,) = sqlx::query_as("SELECT pg_backend_pid()")
            .fetch_one(&pool)
            .await?;
        let postmaster = crate::measure::proc_cpu(u32::try_from(backend)?)
            .context("PostgreSQL's backend process")?
            .ppid;
        pool.close().await;
        Ok(Postgres { server, postmaster })
    }

    /// A new database, named `name` for its token key in `dir`, and a pool to look into it.
    pub async fn fresh_database(
        &self,
        dir: &Path,
        name: &str,
    ) -> anyhow::Result<(SharedStore, PgPool)> {
        let url = postern_testkit::create_database(&self.server.admin_url()).await;
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .connect(&url)
            .await?;
        let store = SharedStore {
            url,
            token_key: dir.join(format!("{name}.token.key")),
        };
        Ok((store, pool))
    }

    /// CPU ticks used so far by the server's processes, exited ones included.
    pub fn cpu_ticks(&self) -> anyhow::Result<u64> {
        crate::measure::tree_cpu(self.postmaster)
    }

    /// Stops the server.
    pub fn stop(&self) -> anyhow::Result<()> {
        self.server.stop().map_err(anyhow::Error::msg)
    }
}
