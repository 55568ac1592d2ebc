//! The app's volumes (`paas storage`) and where each is mounted. A volume row lives from its
//! first mount until `storage:destroy` or the app's deletion; its mounts come and go with
//! `storage:mount` and `storage:unmount`. The mounts belong to the app, not to a release.

use paas_api::storage::{MAX_MOUNTS_PER_APP, Mount, MountPath, Volume, VolumeName};
use rusqlite::{Connection, OptionalExtension, params};

use super::{Store, StoreResult, now, typed};

/// How adding a mount went; anything but `Added` changed nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountAdded {
    /// `new_volume`: the volume row was made by this mount (undoing it removes that too).
    Added { new_volume: bool },
    /// That volume is mounted at that path already.
    AlreadyMounted,
    /// Another volume is mounted at that path.
    PathTaken(VolumeName),
    /// The app has [`MAX_MOUNTS_PER_APP`] mounts already.
    TooMany,
}

/// How removing a volume row went; anything but `Deleted` changed nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeDeletion {
    Deleted,
    NotFound,
    /// It is still mounted at these paths.
    Mounted(Vec<MountPath>),
}

pub(super) fn mounts(conn: &Connection, app_id: i64) -> rusqlite::Result<Vec<Mount>> {
    let mut stmt =
        conn.prepare("SELECT name, path FROM app_mounts WHERE app_id = ?1 ORDER BY path")?;
    stmt.query_map([app_id], |r| {
        Ok(Mount {
            name: typed(r, 0)?,
            path: typed(r, 1)?,
        })
    })?
    .collect()
}

impl Store {
    /// Every volume of the app, by name, with the paths it is mounted at.
    pub async fn volumes(&self, app_id: i64) -> StoreResult<Vec<Volume>> {
        self.run(move |conn| {
            let mut stmt =
                conn.prepare("SELECT name FROM app_volumes WHERE app_id = ?1 ORDER BY name")?;
            let names = stmt
                .query_map([app_id], |r| typed::<VolumeName>(r, 0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mounts = mounts(conn, app_id)?;
            Ok(names
                .into_iter()
                .map(|name| Volume {
                    paths: mounts
                        .iter()
                        .filter(|mount| mount.name == name)
                        .map(|mount| mount.path.clone())
                        .collect(),
                    name,
                })
                .collect())
        })
        .await
    }

    /// Mounts `mount.name` (made if new) at `mount.path`, within the app's limit.
    pub async fn add_mount(&self, app_id: i64, mount: Mount) -> StoreResult<MountAdded> {
        self.transaction(move |tx| {
            let at_path: Option<VolumeName> = tx
                .query_row(
                    "SELECT name FROM app_mounts WHERE app_id = ?1 AND path = ?2",
                    params![app_id, mount.path.as_str()],
                    |r| typed(r, 0),
                )
                .optional()?;
            if let Some(name) = at_path {
                return Ok(if name == mount.name {
                    MountAdded::AlreadyMounted
                } else {
                    MountAdded::PathTaken(name)
                });
            }
            let count: usize = tx.query_row(
                "SELECT COUNT(*) FROM app_mounts WHERE app_id = ?1",
                [app_id],
                |r| r.get(0),
            )?;
            if count >= MAX_MOUNTS_PER_APP {
                return Ok(MountAdded::TooMany);
            }
            let new_volume = tx.execute(
                "INSERT OR IGNORE INTO app_volumes (app_id, name, created_at) VALUES (?1, ?2, ?3)",
                params![app_id, mount.name.as_str(), now()],
            )? == 1;
            tx.execute(
                "INSERT INTO app_mounts (app_id, name, path) VALUES (?1, ?2, ?3)",
                params![app_id, mount.name.as_str(), mount.path.as_str()],
            )?;
            Ok(MountAdded::Added { new_volume })
        })
        .await
    }

    /// Removes the mount; whether it existed. The volume stays.
    pub async fn remove_mount(&self, app_id: i64, mount: Mount) -> StoreResult<bool> {
        self.run(move |conn| {
            Ok(conn.execute(
                "DELETE FROM app_mounts WHERE app_id = ?1 AND name = ?2 AND path = ?3",
                params![app_id, mount.name.as_str(), mount.path.as_str()],
            )? == 1)
        })
        .await
    }

    /// Removes the volume's row, unless it is still mounted.
    pub async fn delete_volume(
        &self,
        app_id: i64,
        name: VolumeName,
    ) -> StoreResult<VolumeDeletion> {
        self.transaction(move |tx| {
            let paths: Vec<MountPath> = {
                let mut stmt = tx.prepare(
                    "SELECT path FROM app_mounts WHERE app_id = ?1 AND name = ?2 ORDER BY path",
                )?;
                stmt.query_map(params![app_id, name.as_str()], |r| typed(r, 0))?
                    .collect::<rusqlite::Result<_>>()?
            };
            if !paths.is_empty() {
                return Ok(VolumeDeletion::Mounted(paths));
            }
            let deleted = tx.execute(
                "DELETE FROM app_volumes WHERE app_id = ?1 AND name = ?2",
                params![app_id, name.as_str()],
            )?;
            Ok(if deleted == 1 {
                VolumeDeletion::Deleted
            } else {
                VolumeDeletion::NotFound
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::TestStore;
    use super::*;

    fn mount(text: &str) -> Mount {
        text.parse().unwrap()
    }

    #[tokio::test]
    async fn mounts_belong_to_their_app_and_go_with_it() {
        let test = TestStore::new();
        let web = test.app("web").await;
        let api = test.app("api").await;
        let store = &test.store;
        assert_eq!(
            store.add_mount(web.id, mount("data:/data")).await.unwrap(),
            MountAdded::Added { new_volume: true }
        );
        assert_eq!(
            store.add_mount(web.id, mount("data:/data/")).await.unwrap(),
            MountAdded::AlreadyMounted
        );
        assert_eq!(
            store.add_mount(web.id, mount("data:/more")).await.unwrap(),
            MountAdded::Added { new_volume: false }
        );
        assert_eq!(
            store.add_mount(web.id, mount("cache:/data")).await.unwrap(),
            MountAdded::PathTaken("data".parse().unwrap())
        );
        store.add_mount(api.id, mount("data:/data")).await.unwrap();
        let settings = store.rollout_settings(web.id).await.unwrap();
        assert_eq!(settings.mounts, [mount("data:/data"), mount("data:/more")]);

        assert_eq!(
            store
                .delete_volume(web.id, "data".parse().unwrap())
                .await
                .unwrap(),
            VolumeDeletion::Mounted(vec!["/data".parse().unwrap(), "/more".parse().unwrap()])
        );
        assert!(
            store
                .remove_mount(web.id, mount("data:/data"))
                .await
                .unwrap()
        );
        assert!(
            !store
                .remove_mount(web.id, mount("data:/data"))
                .await
                .unwrap()
        );
        assert!(
            store
                .remove_mount(web.id, mount("data:/more"))
                .await
                .unwrap()
        );
        let volumes = store.volumes(web.id).await.unwrap();
        assert_eq!(volumes.len(), 1, "an unmounted volume stays");
        assert!(volumes[0].paths.is_empty());
        assert_eq!(
            store
                .delete_volume(web.id, "data".parse().unwrap())
                .await
                .unwrap(),
            VolumeDeletion::Deleted
        );
        assert_eq!(
            store
                .delete_volume(web.id, "data".parse().unwrap())
                .await
                .unwrap(),
            VolumeDeletion::NotFound
        );
        assert_eq!(store.volumes(api.id).await.unwrap()[0].paths.len(), 1);
        store.delete_app(api.id).await.unwrap();
        assert_eq!(test.count("SELECT COUNT(*) FROM app_volumes"), 0);
        assert_eq!(test.count("SELECT COUNT(*) FROM app_mounts"), 0);
    }

    #[tokio::test]
    async fn an_app_has_a_bounded_number_of_mounts() {
        let test = TestStore::new();
        let web = test.app("web").await;
        for i in 0..MAX_MOUNTS_PER_APP {
            let added = test
                .store
                .add_mount(web.id, mount(&format!("v{i}:/data/{i}")))
                .await
                .unwrap();
            assert!(matches!(added, MountAdded::Added { .. }));
        }
        assert_eq!(
            test.store
                .add_mount(web.id, mount("last:/last"))
                .await
                .unwrap(),
            MountAdded::TooMany
        );
        assert_eq!(
            test.store.volumes(web.id).await.unwrap().len(),
            MAX_MOUNTS_PER_APP
        );
    }
}
