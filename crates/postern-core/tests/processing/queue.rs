//! Durable intake separate from processing: one message processed at once, batches stored once,
//! the queue works them off exactly once, even with two queues (two instances) on one store.

use postern_core::Outcome;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use postern_core::intake::{Intake, IntakeMessage, Origin, Taken, take_in};
use postern_core::queue::{ProcessingQueue, QueueEvent};
use postern_store::{InboundSource, InboundState, Mailbox};
use postern_testkit::{BoxError, both};

use crate::support::{INCOMING, World};

/// `count` distinct new-issue messages with IMAP identities and cursor positions.
fn new_issues(world: &World, count: usize) -> Result<Vec<IntakeMessage>, BoxError> {
    let raw = String::from_utf8(world.fixture("valid_new_issue.eml", 0))?;
    Ok((1..=count)
        .map(|n| IntakeMessage {
            raw: raw
                .replace("Message-ID: <", &format!("Message-ID: <q{n}-"))
                .into_bytes()
                .into(),
            source_identity: Some(format!("imap:incoming@localhost/inbox:1:{n}")),
            declared_size: None,
            cursor: Some((
                "incoming@localhost/inbox".to_owned(),
                1,
                i64::try_from(n).unwrap_or(i64::MAX),
            )),
        })
        .collect())
}

async fn issue_count(world: &World) -> Result<usize, BoxError> {
    let mut tx = world.store().begin().await?;
    let issues = tx.list_issues(&Default::default()).await?;
    tx.commit().await?;
    Ok(issues.len())
}

both!(intake_stores_once_and_queue_processes_once, |db| {
    let world = World::new(db).await?;
    let batch = new_issues(&world, 3)?;
    let first = world.take_in_imap(&batch).await?;
    assert_eq!(first.stored.len(), 3);
    // The watcher crashed before flagging and fetched the same messages again.
    let again = world.take_in_imap(&batch).await?;
    assert!(again.stored.is_empty());
    assert_eq!(again.already_stored, 3);
    let mut tx = world.store().begin().await?;
    assert_eq!(
        tx.intake_cursor("incoming@localhost/inbox", 1).await?,
        Some(3)
    );
    for id in &first.stored {
        let stored = tx.inbound(*id).await?.expect("stored");
        assert_eq!(stored.meta.state, InboundState::Received);
    }
    tx.commit().await?;
    assert_eq!(
        issue_count(&world).await?,
        0,
        "intake alone changes nothing"
    );

    let queue = ProcessingQueue::new(Arc::new(world.processor(INCOMING)), 2);
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let report = Arc::new(move |event: QueueEvent| {
        if let QueueEvent::Finished { outcome, .. } = event {
            sink.lock().expect("lock").push(outcome);
        }
    });
    assert_eq!(queue.work_once(report.clone()).await?, 3);
    assert_eq!(queue.work_once(report).await?, 0, "nothing left to do");
    let outcomes = events.lock().expect("lock").clone();
    assert_eq!(outcomes.len(), 3);
    assert!(outcomes.iter().all(|o| o.outcome == Outcome::Processed));
    assert_eq!(issue_count(&world).await?, 3);
    Ok(())
});

both!(
    two_queues_on_one_store_never_process_a_message_twice,
    |db| {
        let world = World::new(db).await?;
        let batch = new_issues(&world, 40)?;
        world.take_in_imap(&batch).await?;
        let finished = Arc::new(Mutex::new(Vec::new()));
        let mut runs = Vec::new();
        for _ in 0..2 {
            let queue = ProcessingQueue::new(Arc::new(world.processor(INCOMING)), 4);
            let sink = finished.clone();
            let report = Arc::new(move |event: QueueEvent| {
                if let QueueEvent::Finished { outcome, .. } = event {
                    sink.lock().expect("lock").push(outcome.inbound_id);
                }
            });
            runs.push(tokio::spawn(async move { queue.work_once(report).await }));
        }
        for run in runs {
            run.await??;
        }
        let mut ids = finished.lock().expect("lock").clone();
        ids.sort_unstable();
        let before = ids.len();
        ids.dedup();
        assert_eq!(before, ids.len(), "a message was processed twice");
        assert_eq!(ids.len(), 40);
        assert_eq!(issue_count(&world).await?, 40);
        Ok(())
    }
);

both!(a_delivery_of_a_queued_message_completes_it_once, |db| {
    let world = World::new(db).await?;
    let batch = new_issues(&world, 1)?;
    world.take_in_imap(&batch).await?;
    // The same message also arrives through the MTA pipe before the queue got to it.
    let piped = world.receive(INCOMING, &batch[0].raw).await?;
    assert_eq!(piped.outcome, Outcome::Processed);
    let queue = ProcessingQueue::new(Arc::new(world.processor(INCOMING)), 1);
    assert_eq!(queue.work_once(Arc::new(|_| {})).await?, 0);
    assert_eq!(issue_count(&world).await?, 1);
    Ok(())
});

const FROM_IMAP: Origin = Origin {
    mailbox: Mailbox::Incoming,
    source: InboundSource::Imap,
};

/// An intake that counts its wake-ups.
fn counting(intake: Intake) -> (Intake, Arc<AtomicUsize>) {
    let wakes = Arc::new(AtomicUsize::new(0));
    let counter = wakes.clone();
    let intake = intake.waking(Arc::new(move || {
        counter.fetch_add(1, Ordering::Relaxed);
    }));
    (intake, wakes)
}

both!(
    one_message_is_processed_at_intake_and_a_batch_is_left_to_the_queue,
    |db| {
        let world = World::new(db).await?;
        let batch = new_issues(&world, 3)?;
        let (intake, wakes) = counting(Intake::processing(Arc::new(world.processor(INCOMING))));
        let Taken::Processed(one) = intake.take(FROM_IMAP, &batch[..1]).await? else {
            panic!("a single message with a processor is processed at once");
        };
        assert_eq!(one.outcome, Outcome::Processed);
        assert_eq!(issue_count(&world).await?, 1);
        assert_eq!(
            wakes.load(Ordering::Relaxed),
            0,
            "nothing waits for the queue"
        );

        let Taken::Stored(rest) = intake.take(FROM_IMAP, &batch[1..]).await? else {
            panic!("a batch is stored for the queue");
        };
        assert_eq!(rest.stored.len(), 2);
        assert_eq!(
            issue_count(&world).await?,
            1,
            "a batch is not processed at intake"
        );
        assert_eq!(wakes.load(Ordering::Relaxed), 1, "the queue is woken");
        let mut tx = world.store().begin().await?;
        assert_eq!(
            tx.intake_cursor("incoming@localhost/inbox", 1).await?,
            Some(3)
        );
        tx.commit().await?;
        Ok(())
    }
);

both!(a_storing_intake_never_processes, |db| {
    let world = World::new(db).await?;
    let batch = new_issues(&world, 1)?;
    let (intake, wakes) = counting(Intake::storing(
        world.store().clone(),
        world.quarantine_directory(),
    ));
    let Taken::Stored(summary) = intake.take(FROM_IMAP, &batch).await? else {
        panic!("companion mode only stores");
    };
    assert_eq!(summary.stored.len(), 1);
    assert_eq!(wakes.load(Ordering::Relaxed), 1);
    assert_eq!(issue_count(&world).await?, 0);
    let known = intake
        .known(&[
            "imap:incoming@localhost/inbox:1:1".to_owned(),
            "imap:other".to_owned(),
        ])
        .await?;
    assert_eq!(known.len(), 1);
    Ok(())
});

// An instance's attempt failed after another instance had taken the message over and processed
// it (the first was stopped mid-transaction, the server ended its session, the second finished
// the message; then the first woke up to a dead connection): its failure must not turn the
// finished message back into work, or it would be processed a second time.
both!(
    a_failure_recorded_after_another_instance_finished_the_message_changes_nothing,
    |db| {
        let world = World::new(db).await?;
        let batch = new_issues(&world, 1)?;
        let stored = world.take_in_imap(&batch).await?;
        let id = stored.stored[0];
        let processor = world.processor(INCOMING);
        let queue = ProcessingQueue::new(Arc::new(processor.clone()), 1);
        assert_eq!(queue.work_once(Arc::new(|_| {})).await?, 1);
        assert_eq!(issue_count(&world).await?, 1);

        let late = postern_core::ProcessError::Temporary("connection closed".to_owned());
        let outcome = processor.record_failure(id, &late).await?;
        assert_eq!(outcome.outcome, Outcome::Duplicate);
        assert_eq!(outcome.first_outcome, Some(Outcome::Processed));
        let mut tx = world.store().begin().await?;
        let message = tx.inbound(id).await?.expect("stored");
        tx.commit().await?;
        assert_eq!(message.meta.state, InboundState::Processed);
        assert_eq!(
            queue.work_once(Arc::new(|_| {})).await?,
            0,
            "nothing to do again"
        );
        assert_eq!(issue_count(&world).await?, 1);

        // A message not finished yet still gets its failure recorded.
        let unfinished = take_in(
            world.store(),
            Mailbox::Incoming,
            InboundSource::Imap,
            &new_issues(&world, 2)?[1..],
            &world.quarantine_directory(),
        )
        .await?;
        let outcome = processor
            .record_failure(unfinished.stored[0], &late)
            .await?;
        assert_eq!(outcome.outcome, Outcome::Queued);
        Ok(())
    }
);
