//! How much mail each person wants: GitLab's notification levels, per project and global
//! (`project_id` 0). The store keeps the names; postern-core gives them meaning.

use crate::tx::{execute, fetch_all, scalar_optional};
use crate::{StoreError, Tx};

impl Tx {
    /// The level `user_id` chose for `project_id` (0: their global level), if they chose one.
    pub async fn notification_level(
        &mut self,
        user_id: i64,
        project_id: i64,
    ) -> Result<Option<String>, StoreError> {
        Ok(scalar_optional!(
            self,
            String,
            "SELECT level FROM notification_levels WHERE user_id = $1 AND project_id = $2",
            user_id,
            project_id,
        )?)
    }

    /// Sets `user_id`'s level for `project_id` (0: global); `None` removes the choice.
    pub async fn set_notification_level(
        &mut self,
        user_id: i64,
        project_id: i64,
        level: Option<&str>,
    ) -> Result<(), StoreError> {
        match level {
            Some(level) => execute!(
                self,
                "INSERT INTO notification_levels (user_id, project_id, level) VALUES ($1, $2, $3)
                 ON CONFLICT (user_id, project_id) DO UPDATE SET level = excluded.level",
                user_id,
                project_id,
                level,
            )?,
            None => execute!(
                self,
                "DELETE FROM notification_levels WHERE user_id = $1 AND project_id = $2",
                user_id,
                project_id,
            )?,
        };
        Ok(())
    }

    /// Every level `user_id` chose, as (project id, level); project 0 is the global one.
    pub async fn notification_levels_of(
        &mut self,
        user_id: i64,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        Ok(fetch_all!(
            self,
            (i64, String),
            "SELECT project_id, level FROM notification_levels WHERE user_id = $1
             ORDER BY project_id",
            user_id,
        )?)
    }

    /// The people who watch `project_id`: those whose level there is `watch`, and the members
    /// whose global level is `watch` and who chose nothing else there.
    pub async fn project_watchers(&mut self, project_id: i64) -> Result<Vec<i64>, StoreError> {
        let rows = fetch_all!(
            self,
            (i64,),
            "SELECT user_id FROM notification_levels WHERE project_id = $1 AND level = 'watch'
             UNION
             SELECT m.user_id FROM members m
               JOIN notification_levels g
                 ON g.user_id = m.user_id AND g.project_id = 0 AND g.level = 'watch'
              WHERE m.project_id = $1
                AND NOT EXISTS (SELECT 1 FROM notification_levels p
                                 WHERE p.user_id = m.user_id AND p.project_id = $1
                                   AND p.level <> 'global')
             ORDER BY 1",
            project_id,
        )?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }
}
