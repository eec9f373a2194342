//! Stopping: SIGINT and SIGTERM, and the parent process of a node that `hcmr bench` started.

use std::time::Duration;

/// Resolves when the process `parent` is no longer this process's parent (it exited and this
/// one was re-parented), checked at once and then twice a second; never when `parent` is `None`.
/// Given the pid (not read at start), a parent that died before this process looked is seen too.
pub(super) async fn parent_exited(parent: Option<u32>) {
    let Some(parent) = parent else {
        return std::future::pending().await;
    };
    while std::os::unix::process::parent_id() == parent {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM. The handlers are installed when this is called (not
/// when first polled), so a signal that arrives as the node starts serving is not lost.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send {
    #[cfg(unix)]
    let (int, term) = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        let (ctrl_c, term) = (
            async move {
                match int {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            },
            async move {
                match term {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            },
        );
        #[cfg(not(unix))]
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {},
            _ = term => {},
        }
        tracing::info!("shutdown signal received: draining in-flight calls");
    }
}
