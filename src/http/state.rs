//! `AppState`: what every request handler shares. Built by `app`, read by the routes and the
//! auth middleware; it sits below both, so no route reaches up to the module that assembles it.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::access::admission::Admission;
use crate::access::auth::Auth;
use crate::access::client_ip::TrustedProxies;
use crate::access::origin::OriginPolicy;
use crate::feed::FeedHandle;
use crate::metrics::Metrics;
use crate::session::SessionContext;

/// Shared by every request handler. The feed, metrics, shutdown token and auth have one owner, the
/// [`SessionContext`] every session gets; handlers reach them through the accessors.
pub struct AppState {
    pub session: SessionContext,
    /// Every live WebSocket session, so shutdown can wait for the last Close.
    pub sessions: TaskTracker,
    /// Every upgraded connection's task (`http::upgrade`), so shutdown can wait for the last
    /// Close to be written.
    pub upgraded: TaskTracker,
    /// Who may open a session now; each session holds a permit.
    pub admission: Arc<Admission>,
    pub proxies: TrustedProxies,
    pub origins: OriginPolicy,
}

impl AppState {
    pub fn feed(&self) -> &FeedHandle {
        &self.session.feed
    }

    pub fn metrics(&self) -> &Metrics {
        &self.session.metrics
    }

    pub fn shutdown(&self) -> &CancellationToken {
        &self.session.shutdown
    }

    pub fn auth(&self) -> &Auth {
        &self.session.auth
    }
}
