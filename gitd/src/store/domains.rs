//! Custom domains: each hostname belongs to one app at most, and no app may hold a name that
//! overlaps another owner's (`paas_api::domains::overlaps`); both are checked in the
//! transaction that adds it.

use paas_api::DomainName;
use paas_api::domains::overlaps;
use paas_api::types::Domain;
use rusqlite::{Connection, params};

use super::{Store, StoreError, StoreResult, now, to_time, typed};

/// How adding a domain went; anything but `Added` changed nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainClaim {
    Added(Domain),
    /// The app has the domain already.
    AlreadyThisApps,
    /// Another owner's app has it, or a name it overlaps. Which app is not said: that is
    /// another tenant's.
    Taken,
}

pub(super) fn hostnames(conn: &Connection, app_id: i64) -> rusqlite::Result<Vec<DomainName>> {
    let mut stmt =
        conn.prepare("SELECT hostname FROM domains WHERE app_id = ?1 ORDER BY hostname")?;
    stmt.query_map([app_id], |r| typed(r, 0))?.collect()
}

fn insert_domain(conn: &Connection, app_id: i64, hostname: &DomainName) -> StoreResult<Domain> {
    let created_at = now();
    conn.execute(
        "INSERT INTO domains (hostname, app_id, created_at) VALUES (?1, ?2, ?3)",
        params![hostname.as_str(), app_id, created_at],
    )?;
    Ok(Domain {
        hostname: hostname.clone(),
        created_at: to_time(created_at),
    })
}

impl Store {
    /// The app's custom domains in name order.
    pub async fn domains(&self, app_id: i64) -> StoreResult<Vec<Domain>> {
        self.run(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT hostname, created_at FROM domains WHERE app_id = ?1 ORDER BY hostname",
            )?;
            Ok(stmt
                .query_map([app_id], |r| {
                    Ok(Domain {
                        hostname: typed(r, 0)?,
                        created_at: to_time(r.get(1)?),
                    })
                })?
                .collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// Adds the domain unless the app has it, another app has it, or it overlaps a domain of
    /// another owner's app (one owner's apps may share a zone: `*.example.com` on one,
    /// `www.example.com` on another).
    pub async fn add_domain(&self, app_id: i64, hostname: &DomainName) -> StoreResult<DomainClaim> {
        let hostname = hostname.clone();
        self.transaction(move |tx| {
            if hostnames(tx, app_id)?.contains(&hostname) {
                return Ok(DomainClaim::AlreadyThisApps);
            }
            let mut others = tx.prepare(
                "SELECT d.hostname FROM domains d JOIN apps a ON a.id = d.app_id
                 WHERE a.owner_id != (SELECT owner_id FROM apps WHERE id = ?1)",
            )?;
            let others = others
                .query_map([app_id], |r| typed::<DomainName>(r, 0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            if others.iter().any(|other| overlaps(&hostname, other)) {
                return Ok(DomainClaim::Taken);
            }
            match insert_domain(tx, app_id, &hostname) {
                Ok(domain) => Ok(DomainClaim::Added(domain)),
                Err(StoreError::Conflict) => Ok(DomainClaim::Taken),
                Err(err) => Err(err),
            }
        })
        .await
    }

    /// Puts back a domain just removed, when the change that removed it is undone.
    pub async fn restore_domain(&self, app_id: i64, hostname: &DomainName) -> StoreResult<()> {
        let hostname = hostname.clone();
        self.run(move |conn| insert_domain(conn, app_id, &hostname).map(drop))
            .await
    }

    /// Returns whether the app had the domain.
    pub async fn remove_domain(&self, app_id: i64, hostname: &DomainName) -> StoreResult<bool> {
        let hostname = hostname.clone();
        self.run(move |conn| {
            Ok(conn.execute(
                "DELETE FROM domains WHERE app_id = ?1 AND hostname = ?2",
                params![app_id, hostname.as_str()],
            )? > 0)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::TestStore;
    use super::*;

    fn added(claim: DomainClaim) -> Domain {
        match claim {
            DomainClaim::Added(domain) => domain,
            other => panic!("not added: {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_domain_belongs_to_one_app_and_goes_with_it() {
        let test = TestStore::new();
        let web = test.app("web").await;
        let api = test.app("api").await;
        added(
            test.store
                .add_domain(web.id, &"www.example.com".parse().unwrap())
                .await
                .unwrap(),
        );
        assert_eq!(
            test.store
                .add_domain(web.id, &"www.example.com".parse().unwrap())
                .await
                .unwrap(),
            DomainClaim::AlreadyThisApps
        );
        assert_eq!(
            test.store
                .add_domain(api.id, &"www.example.com".parse().unwrap())
                .await
                .unwrap(),
            DomainClaim::Taken
        );
        assert!(
            !test
                .store
                .remove_domain(api.id, &"www.example.com".parse().unwrap())
                .await
                .unwrap()
        );
        test.store.delete_app(web.id).await.unwrap();
        added(
            test.store
                .add_domain(api.id, &"www.example.com".parse().unwrap())
                .await
                .unwrap(),
        );
        assert_eq!(
            test.store.domains(api.id).await.unwrap()[0].hostname,
            "www.example.com"
        );
    }

    #[tokio::test]
    async fn overlaps_are_refused_across_owners_only() {
        let test = TestStore::new();
        let web = test.app_of("alice", "web").await;
        let blog = test.app_of("alice", "blog").await;
        let shop = test.app_of("bob", "shop").await;
        added(
            test.store
                .add_domain(web.id, &"*.example.com".parse().unwrap())
                .await
                .unwrap(),
        );
        added(
            test.store
                .add_domain(blog.id, &"www.example.com".parse().unwrap())
                .await
                .unwrap(),
        );
        assert_eq!(
            test.store
                .add_domain(shop.id, &"shop.example.com".parse().unwrap())
                .await
                .unwrap(),
            DomainClaim::Taken
        );
        assert!(
            test.store
                .remove_domain(blog.id, &"www.example.com".parse().unwrap())
                .await
                .unwrap()
        );
        test.store
            .restore_domain(blog.id, &"www.example.com".parse().unwrap())
            .await
            .unwrap();
        assert_eq!(test.store.domains(blog.id).await.unwrap().len(), 1);
        assert!(test.store.domains(shop.id).await.unwrap().is_empty());
    }
}
