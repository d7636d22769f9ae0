//! The folder transport: one `.eml` per mail, exactly the stored bytes, written atomically.

use postern_outbox::{FolderTransport, Outgoing, Report, Sender, Transport as _};
use postern_store::OutboxState;
use postern_testkit::both;

use crate::support::{enqueue, message, row, tag};

both!(folder_transport_writes_one_file_per_mail, |db| {
    let data_dir = tempfile::tempdir()?;
    let tag = tag();
    let first = message(&tag, "ann@example.org");
    let a = enqueue(&db.store, &["ann@example.org", "bob@example.org"], &first).await?;
    let odd = message(&tag, "x");
    let b = enqueue(&db.store, &["../Evil Name/@x"], &odd).await?;

    let sender = Sender::new(db.store.clone(), FolderTransport::new(data_dir.path()));
    assert_eq!(
        sender.deliver_due(10).await?,
        Report {
            sent: 2,
            ..Report::default()
        }
    );
    let outbox = data_dir.path().join("outbox");
    let mut names: Vec<String> = std::fs::read_dir(&outbox)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    names.sort();
    // No temporary files left behind; names from the id and the sanitised first recipient.
    assert_eq!(
        names,
        [
            format!("{a}-ann@example.org.eml"),
            format!("{b}-.._Evil_Name_@x.eml")
        ]
    );
    assert_eq!(std::fs::read(outbox.join(&names[0]))?, first);
    assert_eq!(std::fs::read(outbox.join(&names[1]))?, odd);
    assert_eq!(row(&db.store, a).await?.state, OutboxState::Sent);

    // Sending the same row again (as after a crash before it was marked sent) rewrites its own
    // file: still one file, same bytes.
    let recipients = ["ann@example.org".to_owned()];
    let again = Outgoing {
        id: a,
        recipients: &recipients,
        raw: &first,
    };
    sender.transport().send(again).await?;
    assert_eq!(std::fs::read_dir(&outbox)?.count(), 2);
    assert_eq!(std::fs::read(outbox.join(&names[0]))?, first);
    Ok(())
});

both!(run_delivers_until_shutdown, |db| {
    let data_dir = tempfile::tempdir()?;
    let id = enqueue(
        &db.store,
        &["ann@example.org"],
        &message(&tag(), "ann@example.org"),
    )
    .await?;
    let sender = std::sync::Arc::new(Sender::new(
        db.store.clone(),
        FolderTransport::new(data_dir.path()),
    ));
    let (stop, stopped) = postern_vocab::Shutdown::new();
    let worker = tokio::spawn({
        let sender = sender.clone();
        async move {
            sender.run(stopped).await;
        }
    });
    // Bounded wait for the loop's first round.
    let mut state = OutboxState::Queued;
    for _ in 0..200 {
        state = row(&db.store, id).await?.state;
        if state == OutboxState::Sent {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(state, OutboxState::Sent);
    stop.stop();
    tokio::time::timeout(std::time::Duration::from_secs(30), worker).await??;
    Ok(())
});
