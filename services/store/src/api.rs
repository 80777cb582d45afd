//! `pos.v1.StoreService`: what owners and tablets call. Every handler resolves the caller
//! to rows it may touch (object-level authorization) before doing anything. A tablet's
//! credential was checked before the handler runs (by the auth layer, or by the edge).
//! Lists answer a page at a time ([`crate::paging`]); writes answer one row or a count,
//! so no answer can outgrow a message after its change has committed.

use std::sync::Arc;

use pos_common::{
    ApiError, ApiResult, Reason,
    auth::{Principal, TokenIssuer},
    domain::{DeviceId, ProductId, StoreId},
    error::Violations,
};
use pos_proto::v1::{self as pb, store_service_server::StoreService};
use pos_store_storage::{
    Amount, Category, Created, NewProduct, ProductChange, ProductFilter, ProductLimit, ProductName,
    Store, StoreStorage,
};
use tonic::{Request, Response, Status};

use crate::{
    convert,
    paging::{List, PageSpec},
};

/// The public store API over the store's storage.
#[derive(Clone)]
pub struct StoreApi {
    storage: Arc<dyn StoreStorage>,
    device_tokens: Option<TokenIssuer>,
    product_limit: ProductLimit,
}

impl StoreApi {
    /// `device_tokens` signs tablet credentials; without it IssueDeviceToken is unavailable.
    /// A store may have at most `product_limit` live products.
    pub fn new(
        storage: Arc<dyn StoreStorage>,
        device_tokens: Option<TokenIssuer>,
        product_limit: ProductLimit,
    ) -> Self {
        Self {
            storage,
            device_tokens,
            product_limit,
        }
    }

    /// The calling owner's store. The owner's user id is the source of truth; a token that
    /// names a different store is refused.
    async fn owner_store(&self, principal: &Principal) -> ApiResult<Store> {
        let (user_id, claimed_store) = principal.require_owner()?;
        let store = self
            .storage
            .store_of_owner(user_id)
            .await?
            .ok_or_else(|| ApiError::new(Reason::StoreNotFound, "this owner has no store"))?;
        if claimed_store.is_some_and(|claimed| claimed != store.id) {
            return Err(ApiError::new(
                Reason::NotYourStore,
                "the token names a store this owner does not own",
            ));
        }
        Ok(store)
    }

    /// The owner's store and the product id a request names.
    async fn owner_product<T>(
        &self,
        request: &Request<T>,
        raw_id: i64,
    ) -> ApiResult<(Store, ProductId)> {
        let store = self.owner_store(Principal::of(request)?).await?;
        let product_id =
            ProductId::parse(raw_id).map_err(|why| ApiError::invalid("product_id", why))?;
        Ok((store, product_id))
    }

    async fn owner_device<T>(
        &self,
        request: &Request<T>,
        raw_id: i64,
    ) -> ApiResult<(Store, DeviceId)> {
        let store = self.owner_store(Principal::of(request)?).await?;
        let device_id =
            DeviceId::parse(raw_id).map_err(|why| ApiError::invalid("device_id", why))?;
        Ok((store, device_id))
    }
}

fn product_not_found(product_id: ProductId) -> ApiError {
    ApiError::new(
        Reason::ProductNotFound,
        format!("product {product_id} not found in your store"),
    )
    .with_metadata("product_id", product_id)
}

fn device_not_found(device_id: DeviceId) -> ApiError {
    ApiError::new(
        Reason::DeviceNotFound,
        format!("device {device_id} not found in your store"),
    )
    .with_metadata("device_id", device_id)
}

type RpcResult<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl StoreService for StoreApi {
    async fn get_my_store(
        &self,
        request: Request<pb::GetMyStoreRequest>,
    ) -> RpcResult<pb::GetMyStoreResponse> {
        let store = self.owner_store(Principal::of(&request)?).await?;
        Ok(Response::new(pb::GetMyStoreResponse {
            store: Some(convert::store(store)),
        }))
    }

    async fn list_devices(
        &self,
        request: Request<pb::ListDevicesRequest>,
    ) -> RpcResult<pb::ListDevicesResponse> {
        let store = self.owner_store(Principal::of(&request)?).await?;
        let mut violations = Violations::new();
        let page = PageSpec::parse(
            List::Devices,
            request.get_ref().page.as_ref(),
            &mut violations,
        );
        let page = violations.finish(|| page)?;
        let rows = self.storage.devices_page(store.id, page.query()).await?;
        let (devices, next_page_token) = page.finish(rows, |d| d.id.get());
        Ok(Response::new(pb::ListDevicesResponse {
            devices: devices.into_iter().map(convert::device).collect(),
            next_page_token,
        }))
    }

    async fn issue_device_token(
        &self,
        request: Request<pb::IssueDeviceTokenRequest>,
    ) -> RpcResult<pb::IssueDeviceTokenResponse> {
        let (store, device_id) = self
            .owner_device(&request, request.get_ref().device_id)
            .await?;
        let issuer = self.device_tokens.as_ref().ok_or_else(|| {
            ApiError::unavailable("device token signing", "no signing key configured")
        })?;
        let device = self
            .storage
            .rotate_device_credential(store.id, device_id, false)
            .await?
            .ok_or_else(|| device_not_found(device_id))?;
        let token = issuer.device(store.id, device.id, device.credential_version);
        Ok(Response::new(pb::IssueDeviceTokenResponse {
            device: Some(convert::device(device)),
            device_token: token,
        }))
    }

    async fn revoke_device(
        &self,
        request: Request<pb::RevokeDeviceRequest>,
    ) -> RpcResult<pb::RevokeDeviceResponse> {
        let (store, device_id) = self
            .owner_device(&request, request.get_ref().device_id)
            .await?;
        let device = self
            .storage
            .rotate_device_credential(store.id, device_id, true)
            .await?
            .ok_or_else(|| device_not_found(device_id))?;
        Ok(Response::new(pb::RevokeDeviceResponse {
            device: Some(convert::device(device)),
        }))
    }

    async fn create_product(
        &self,
        request: Request<pb::CreateProductRequest>,
    ) -> RpcResult<pb::CreateProductResponse> {
        let store = self.owner_store(Principal::of(&request)?).await?;
        let body = request.get_ref();
        let mut violations = Violations::new();
        let name = violations.check("name", ProductName::parse(&body.name));
        let category = violations.check("category", Category::parse(body.category));
        let price = violations.check("price", Amount::parse(body.price));
        let base_stock = violations.check("base_stock", Amount::parse(body.base_stock));
        let new = violations.finish(|| {
            Some(NewProduct {
                name: name?,
                category: category?,
                price: price?,
                base_stock: base_stock?,
            })
        })?;
        let limit = self.product_limit;
        let product = match self.storage.create_product(store.id, &new, limit).await? {
            Created::Product(product) => product,
            Created::StoreFull => {
                return Err(ApiError::new(
                    Reason::ProductLimitReached,
                    format!(
                        "a store has at most {} products; delete one to add another",
                        limit.get()
                    ),
                )
                .with_metadata("limit", limit.get())
                .into());
            }
        };
        Ok(Response::new(pb::CreateProductResponse {
            product: Some(convert::product(product)),
        }))
    }

    async fn update_product(
        &self,
        request: Request<pb::UpdateProductRequest>,
    ) -> RpcResult<pb::UpdateProductResponse> {
        let body = request.get_ref();
        let (store, product_id) = self.owner_product(&request, body.product_id).await?;
        let mut violations = Violations::new();
        let price = body
            .price
            .and_then(|p| violations.check("price", Amount::parse(p)));
        let base_stock = body
            .base_stock
            .and_then(|b| violations.check("base_stock", Amount::parse(b)));
        let change = match ProductChange::new(price, base_stock) {
            Ok(change) => Some(change),
            // Only report "set one" when neither was sent, not when one was invalid.
            Err(why) if body.price.is_none() && body.base_stock.is_none() => {
                violations.add("price", why);
                None
            }
            Err(_) => None,
        };
        let change = violations.finish(|| change)?;
        let product = self
            .storage
            .update_product(store.id, product_id, &change)
            .await?
            .ok_or_else(|| product_not_found(product_id))?;
        Ok(Response::new(pb::UpdateProductResponse {
            product: Some(convert::product(product)),
        }))
    }

    async fn delete_product(
        &self,
        request: Request<pb::DeleteProductRequest>,
    ) -> RpcResult<pb::DeleteProductResponse> {
        let (store, product_id) = self
            .owner_product(&request, request.get_ref().product_id)
            .await?;
        let product = self
            .storage
            .delete_product(store.id, product_id)
            .await?
            .ok_or_else(|| product_not_found(product_id))?;
        Ok(Response::new(pb::DeleteProductResponse {
            product: Some(convert::product(product)),
        }))
    }

    async fn restock(
        &self,
        request: Request<pb::RestockRequest>,
    ) -> RpcResult<pb::RestockResponse> {
        let store = self.owner_store(Principal::of(&request)?).await?;
        let restocked = self.storage.restock(store.id).await?;
        Ok(Response::new(pb::RestockResponse {
            restocked_count: i64::try_from(restocked).unwrap_or(i64::MAX),
            ..Default::default()
        }))
    }

    async fn list_product_history(
        &self,
        request: Request<pb::ListProductHistoryRequest>,
    ) -> RpcResult<pb::ListProductHistoryResponse> {
        let body = request.get_ref();
        let (store, product_id) = self.owner_product(&request, body.product_id).await?;
        let mut violations = Violations::new();
        let page = PageSpec::parse(List::History, body.page.as_ref(), &mut violations);
        let page = violations.finish(|| page)?;
        let rows = self
            .storage
            .product_history(store.id, product_id, page.query())
            .await?
            .ok_or_else(|| product_not_found(product_id))?;
        let (entries, next_page_token) = page.finish(rows, |entry| entry.seq);
        Ok(Response::new(pb::ListProductHistoryResponse {
            entries: entries.into_iter().map(convert::history).collect(),
            next_page_token,
        }))
    }

    async fn list_products(
        &self,
        request: Request<pb::ListProductsRequest>,
    ) -> RpcResult<pb::ListProductsResponse> {
        let principal = Principal::of(&request)?;
        let body = request.get_ref();
        let mut violations = Violations::new();
        let category = violations.check("category", Category::parse_filter(body.category));
        let page = PageSpec::parse(List::Products, body.page.as_ref(), &mut violations);
        let (category, page) = violations.finish(|| Some((category?, page?)))?;
        let (store_id, include_deleted): (StoreId, bool) = match principal {
            Principal::Device(tablet) => {
                if body.include_deleted {
                    return Err(ApiError::new(
                        Reason::RoleNotAllowed,
                        "tablets see only products on sale",
                    )
                    .into());
                }
                (tablet.store_id, false)
            }
            _ => (self.owner_store(principal).await?.id, body.include_deleted),
        };
        let filter = ProductFilter {
            category,
            include_deleted,
        };
        let rows = self
            .storage
            .list_products(store_id, filter, page.query())
            .await?;
        let (products, next_page_token) = page.finish(rows, |p| p.id.get());
        Ok(Response::new(pb::ListProductsResponse {
            products: products.into_iter().map(convert::product).collect(),
            next_page_token,
        }))
    }
}
