//! Counters per window: a budget is taken one unit at a time, never beyond its limit, starts
//! again in a new window, and gives a unit back on request.

use crate::support::both;

both!(
    a_budget_is_taken_up_to_its_limit_and_starts_again_next_window,
    |db| {
        let mut tx = db.tx().await;
        assert_eq!(tx.take_send_unit("to:a", 3600, 2).await?, Some(1));
        assert_eq!(tx.take_send_unit("to:a", 3600, 2).await?, Some(2));
        assert_eq!(tx.take_send_unit("to:a", 3600, 2).await?, None);
        assert_eq!(
            tx.send_units_used("to:a", 3600).await?,
            2,
            "a refusal uses nothing"
        );
        // Another bucket has its own budget.
        assert_eq!(tx.take_send_unit("to:b", 3600, 2).await?, Some(1));
        // The next window starts from nothing.
        assert_eq!(tx.take_send_unit("to:a", 7200, 2).await?, Some(1));
        assert_eq!(tx.send_units_used("to:a", 3600).await?, 0);
        // A limit of 0 is always spent, and creates nothing.
        assert_eq!(tx.take_send_unit("to:c", 7200, 0).await?, None);
        assert_eq!(tx.send_units_used("to:c", 7200).await?, 0);
        tx.commit().await
    }
);

both!(a_unit_given_back_can_be_taken_again, |db| {
    let mut tx = db.tx().await;
    assert_eq!(tx.take_send_unit("global", 0, 1).await?, Some(1));
    assert_eq!(tx.take_send_unit("global", 0, 1).await?, None);
    assert!(tx.give_back_send_unit("global", 0).await?);
    assert_eq!(tx.take_send_unit("global", 0, 1).await?, Some(1));
    // Nothing to give back in another window.
    assert!(!tx.give_back_send_unit("global", 3600).await?);
    tx.commit().await
});

both!(stale_windows_are_pruned, |db| {
    let mut tx = db.tx().await;
    tx.take_send_unit("to:old", 0, 5).await?;
    tx.take_send_unit("to:new", 3600, 5).await?;
    assert_eq!(tx.prune_send_counters(3600).await?, 1);
    assert_eq!(tx.send_units_used("to:new", 3600).await?, 1);
    tx.commit().await
});

both!(
    concurrent_transactions_never_take_more_than_the_limit,
    |db| {
        let mut tasks = Vec::new();
        for _ in 0..12 {
            let store = db.store.clone();
            tasks.push(tokio::spawn(async move {
                let mut tx = store.begin().await?;
                let taken = tx.take_send_unit("global", 3600, 5).await?;
                tx.commit().await?;
                Ok::<_, postern_store::StoreError>(taken.is_some())
            }));
        }
        let mut granted = 0;
        for task in tasks {
            if task.await.expect("task does not panic")? {
                granted += 1;
            }
        }
        assert_eq!(granted, 5);
        let mut tx = db.tx().await;
        assert_eq!(tx.send_units_used("global", 3600).await?, 5);
        tx.commit().await
    }
);
