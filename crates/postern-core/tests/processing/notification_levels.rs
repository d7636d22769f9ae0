//! GitLab's notification levels: `watch` hears of all of a project's activity, `disabled`
//! of nothing, `participating` (the default) of the threads one takes part in.

use postern_core::actions;
use postern_core::notification_levels::{self, Level, LevelRefusal};
use postern_store::{NewIssue, Role};
use postern_testkit::both;

use crate::support::{INCOMING, World, mails_to};

both!(watchers_hear_everything_and_disabled_hear_nothing, |db| {
    let world = World::new(db).await?;
    let finn = world
        .member("finn", "finn@adventuretime.ooo", Some(Role::Developer))
        .await?;
    let bmo = world
        .member("bmo", "bmo@adventuretime.ooo", Some(Role::Reporter))
        .await?;
    let outsider = world.member("lsp", "lsp@adventuretime.ooo", None).await?;
    let mut tx = world.store().begin().await?;
    // Finn watches everything he is a member of; BMO turns this project off; an outsider's
    // `watch` on a private project reads nothing.
    assert_eq!(
        notification_levels::set(&mut tx, &finn, None, Level::Watch).await?,
        Ok(())
    );
    assert_eq!(
        notification_levels::set(&mut tx, &bmo, Some(&world.project), Level::Disabled).await?,
        Ok(())
    );
    assert_eq!(
        notification_levels::set(&mut tx, &outsider, Some(&world.project), Level::Watch).await?,
        Err(LevelRefusal::ProjectNotFound)
    );
    assert_eq!(
        notification_levels::set(&mut tx, &finn, None, Level::Global).await?,
        Err(LevelRefusal::GlobalIsNotALevel)
    );
    // BMO authored the issue: a participant, yet disabled.
    let issue = tx
        .create_issue(NewIssue::new(world.project.id, bmo.id, "Quiet", ""))
        .await?;
    tx.commit().await?;

    let config = world.config(INCOMING);
    let mut tx = world.store().begin().await?;
    actions::comment(
        &mut tx,
        &config,
        &world.project,
        &world.jake,
        &issue,
        "Hello",
    )
    .await?;
    assert_eq!(
        notification_levels::effective(&mut tx, finn.id, world.project.id).await?,
        Level::Watch
    );
    assert_eq!(
        notification_levels::effective(&mut tx, bmo.id, world.project.id).await?,
        Level::Disabled
    );
    assert_eq!(
        notification_levels::effective(&mut tx, world.jake.id, world.project.id).await?,
        Level::Participating
    );
    tx.commit().await?;
    assert_eq!(
        mails_to(&world, "notification", "finn@adventuretime.ooo").await?,
        1,
        "watching"
    );
    assert_eq!(
        mails_to(&world, "notification", "bmo@adventuretime.ooo").await?,
        0,
        "disabled"
    );

    // Back to the global level: BMO participates again.
    let mut tx = world.store().begin().await?;
    notification_levels::set(&mut tx, &bmo, Some(&world.project), Level::Global)
        .await?
        .map_err(|e| e.to_string())?;
    actions::comment(
        &mut tx,
        &config,
        &world.project,
        &world.jake,
        &issue,
        "Again",
    )
    .await?;
    tx.commit().await?;
    assert_eq!(
        mails_to(&world, "notification", "bmo@adventuretime.ooo").await?,
        1
    );
    Ok(())
});
