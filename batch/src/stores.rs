//! Which stores a window covers: every store, or those settling on a day of the month.
//! Stores are the store role's; the batch asks it over `StoreInternalService` with its
//! service token (the role lists stores only to the settlement role).

use async_trait::async_trait;
use pos_common::{
    domain::StoreId,
    peer::{Peer, ServiceCredential, WithServiceToken, with_service_token},
};
use pos_proto::v1::{self as pb, store_internal_service_client::StoreInternalServiceClient};

use crate::{SETTLEMENT_DAYS, Stores};

/// Stores listed per call; the store role answers up to 1,000.
const PAGE_SIZE: i32 = 1_000;

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("the store role did not list its stores: {0}")]
    Call(#[source] tonic::Status),
    #[error("the store role listed a store with id {0}")]
    BadStore(i64),
}

/// Where the batch learns which stores exist and when they settle.
#[async_trait]
pub trait StoreDirectory: Send + Sync + 'static {
    /// The stores whose monthly settlement falls on `day`, by id.
    async fn settling_on(&self, day: u32) -> Result<Vec<StoreId>, DirectoryError>;

    /// The stores a window covers, sorted by id: every store settles on one of the
    /// settlement days, so every store is the union of those.
    async fn stores(&self, stores: Stores) -> Result<Vec<StoreId>, DirectoryError> {
        let mut found = match stores {
            Stores::SettlingOn(day) => self.settling_on(day).await?,
            Stores::All => {
                let mut all = Vec::new();
                for day in SETTLEMENT_DAYS {
                    all.extend(self.settling_on(day).await?);
                }
                all
            }
        };
        found.sort_unstable();
        found.dedup();
        Ok(found)
    }

    /// The day of the month `store` settles on; `None` for a store the role does not
    /// know.
    async fn settlement_day_of(&self, store: StoreId) -> Result<Option<u32>, DirectoryError> {
        for day in SETTLEMENT_DAYS {
            if self.settling_on(day).await?.contains(&store) {
                return Ok(Some(day));
            }
        }
        Ok(None)
    }
}

/// The store role's list of stores, read page by page.
#[derive(Clone)]
pub struct StoreRoleDirectory {
    client: StoreInternalServiceClient<WithServiceToken<Peer>>,
}

impl StoreRoleDirectory {
    pub fn new(store: Peer, credential: &ServiceCredential) -> Self {
        Self {
            client: StoreInternalServiceClient::new(with_service_token(store, credential)),
        }
    }
}

#[async_trait]
impl StoreDirectory for StoreRoleDirectory {
    async fn settling_on(&self, day: u32) -> Result<Vec<StoreId>, DirectoryError> {
        let mut client = self.client.clone();
        let mut stores = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = client
                .list_stores_by_settlement_day(pb::ListStoresBySettlementDayRequest {
                    settlement_day: i32::try_from(day).unwrap_or(i32::MAX),
                    page: Some(pb::PageRequest {
                        page_size: PAGE_SIZE,
                        page_token: page_token.clone(),
                    }),
                })
                .await
                .map_err(DirectoryError::Call)?
                .into_inner();
            for store in page.stores {
                stores.push(
                    StoreId::parse(store.id).map_err(|_| DirectoryError::BadStore(store.id))?,
                );
            }
            if page.next_page_token.is_empty() {
                return Ok(stores);
            }
            page_token = page.next_page_token;
        }
    }
}
