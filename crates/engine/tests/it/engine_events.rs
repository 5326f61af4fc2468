//! What the engine tells a shell as it happens (`Engine::events`): the desktop's
//! notifications of finished broadcasts and of the account's pauses come from here.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use relay_engine::channel::{Accepted, Channel, OutgoingMessage, SendError};
use relay_engine::{Engine, EngineEvent};
use tokio::sync::broadcast;

use crate::helpers::*;

/// The next event, or the test fails after a long while (nothing here takes a second).
async fn next(events: &mut broadcast::Receiver<EngineEvent>) -> EngineEvent {
    tokio::time::timeout(Duration::from_secs(20), events.recv())
        .await
        .expect("an event comes")
        .expect("the channel is open")
}

#[tokio::test]
async fn a_finished_broadcast_is_told_once_with_its_figures() {
    let app = world(&[]).await;
    add_usual_carriers(&app.camionback);
    app.cloud.script(
        "212612345602",
        vec![relay_test_support::Reply::meta(
            400,
            131026,
            "Message undeliverable",
        )],
    );
    let app = app.start().await;
    let mut events = app.engine().events().subscribe();
    app.post_order(order(1)).await;

    match next(&mut events).await {
        EngineEvent::BatchFinished(done) => {
            assert_eq!(done.order_id, 1);
            assert_eq!(done.batch, 0, "the automatic broadcast");
            assert_eq!(
                (done.succeeded, done.failed, done.pending),
                (2, 1, 0),
                "{done:?}"
            );
        }
        other => panic!("expected the broadcast's end, got {other:?}"),
    }
    assert!(
        matches!(
            events.try_recv(),
            Err(broadcast::error::TryRecvError::Empty)
        ),
        "told once"
    );
}

/// A channel whose account cannot send at the first two tries, then can: a token renewed,
/// WhatsApp back.
struct BackSoon {
    refusals_left: AtomicU32,
}

#[async_trait]
impl Channel for BackSoon {
    fn name(&self) -> &'static str {
        "test"
    }

    async fn send(&self, _: OutgoingMessage<'_>) -> Result<Accepted, SendError> {
        let refused = self
            .refusals_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if refused {
            return Err(SendError::Unavailable {
                reason: "jeton refusé (401) : renouvelez-le dans Paramètres".into(),
                retry_after: Duration::from_millis(50),
            });
        }
        Ok(Accepted { message_id: None })
    }
}

#[tokio::test]
async fn an_account_pause_is_told_once_when_it_starts_and_once_when_it_ends() {
    let app = world(&[]).await;
    add_usual_carriers(&app.camionback);
    let settings = settings_for(&app.dir, &app.camionback, &app.cloud, &app.overrides);
    let engine = Engine::start_with_channel(
        settings,
        Arc::new(BackSoon {
            refusals_left: AtomicU32::new(2),
        }),
    )
    .await
    .expect("engine");
    let mut events = engine.events().subscribe();
    let mut app = TestApp {
        engine: Some(engine),
        ..app
    };
    app.post_order(order(1)).await;

    match next(&mut events).await {
        EngineEvent::SendingPaused { reason, until_ms } => {
            assert!(reason.contains("jeton refusé"), "{reason}");
            assert!(until_ms > 0);
        }
        other => panic!("expected the pause, got {other:?}"),
    }
    // The second refusal, while paused, is not told again.
    assert_eq!(next(&mut events).await, EngineEvent::SendingResumed);
    match next(&mut events).await {
        EngineEvent::BatchFinished(done) => assert_eq!(done.succeeded, 3, "{done:?}"),
        other => panic!("expected the broadcast's end, got {other:?}"),
    }
    app.stop().await;
}
