//! Stores and their ordering tablets.

use pos_common::{ApiResult, time::now_millis};

use super::{DeviceRow, StoreRepo, StoreRow, device_columns, store_columns};
use crate::domain::{Grade, SettlementDay, StoreName};

impl StoreRepo {
    /// Creates the owner's store with `grade.device_count()` tablets labelled "table N",
    /// in one transaction. When the owner already has a store, returns it unchanged with
    /// `false`: a retried signup completes instead of failing or duplicating.
    pub async fn create_store_for_owner(
        &self,
        owner_user_id: i64,
        name: &StoreName,
        grade: Grade,
        settlement_day: SettlementDay,
    ) -> ApiResult<(StoreRow, bool)> {
        let now = now_millis();
        let mut tx = self.db.pool().begin().await?;
        let inserted: Option<StoreRow> = sqlx::query_as(concat!(
            "INSERT INTO stores (owner_user_id, name, pos_grade, settlement_day, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (owner_user_id) DO NOTHING \
             RETURNING ",
            store_columns!(),
            ""
        ))
        .bind(owner_user_id)
        .bind(name.as_str())
        .bind(grade.as_db())
        .bind(i64::from(settlement_day.get()))
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(store) = inserted else {
            tx.rollback().await?;
            let existing = self.store_of_owner(owner_user_id).await?;
            return existing
                .map(|store| (store, false))
                .ok_or_else(|| pos_common::ApiError::internal("store vanished after conflict"));
        };
        // Labels are generated here from integers, so inlining them is safe.
        let values: Vec<String> = (1..=grade.device_count())
            .map(|n| format!("($1, 'table {n}', 1, $2)"))
            .collect();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO devices (store_id, label, credential_version, created_at) VALUES {}",
            values.join(", ")
        )))
        .bind(store.id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((store, true))
    }

    pub async fn store_of_owner(&self, owner_user_id: i64) -> ApiResult<Option<StoreRow>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            store_columns!(),
            " FROM stores WHERE owner_user_id = $1"
        ))
        .bind(owner_user_id)
        .fetch_optional(self.db.pool())
        .await?)
    }

    /// Stores closing their month on `day`, by id, after `after_id`, at most `limit`.
    pub async fn stores_by_settlement_day(
        &self,
        day: SettlementDay,
        after_id: i64,
        limit: i64,
    ) -> ApiResult<Vec<StoreRow>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            store_columns!(),
            " FROM stores WHERE settlement_day = $1 AND id > $2 \
             ORDER BY id LIMIT $3"
        ))
        .bind(i64::from(day.get()))
        .bind(after_id)
        .bind(limit)
        .fetch_all(self.db.pool())
        .await?)
    }

    pub async fn devices_of_store(&self, store_id: i64) -> ApiResult<Vec<DeviceRow>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            device_columns!(),
            " FROM devices WHERE store_id = $1 ORDER BY id"
        ))
        .bind(store_id)
        .fetch_all(self.db.pool())
        .await?)
    }

    pub async fn device(&self, store_id: i64, device_id: i64) -> ApiResult<Option<DeviceRow>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            device_columns!(),
            " FROM devices WHERE id = $1 AND store_id = $2"
        ))
        .bind(device_id)
        .bind(store_id)
        .fetch_optional(self.db.pool())
        .await?)
    }

    /// Bumps the tablet's credential version so every token issued before stops working.
    /// `revoke` leaves it revoked until the next issue; otherwise it is active again.
    pub async fn rotate_device_credential(
        &self,
        store_id: i64,
        device_id: i64,
        revoke: bool,
    ) -> ApiResult<Option<DeviceRow>> {
        let now = now_millis();
        Ok(sqlx::query_as(concat!(
            "UPDATE devices SET credential_version = credential_version + 1, revoked_at = $1 \
             WHERE id = $2 AND store_id = $3 RETURNING ",
            device_columns!(),
            ""
        ))
        .bind(revoke.then_some(now))
        .bind(device_id)
        .bind(store_id)
        .fetch_optional(self.db.pool())
        .await?)
    }
}
