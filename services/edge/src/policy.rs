//! Who may call what: one declarative table naming every public RPC. The edge refuses
//! anything not in it; a test checks the table against the API's descriptor set so a new
//! RPC cannot ship without a decision.

/// Who may call an RPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, no token needed.
    Public,
    /// An owner's access token.
    Owner,
    /// A tablet's device token.
    Device,
    /// Either of the above.
    OwnerOrDevice,
}

/// One row of the policy table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub access: Access,
    /// Server-streaming RPCs get no default deadline (they stay open by design).
    pub streaming: bool,
    /// Whether the service checks a tablet's credential itself, as part of the call's
    /// own work (PlaceOrder: with the stock reservation, in the same read as the store's
    /// other checks), so the edge does not ask the store separately first.
    pub service_checks_tablet: bool,
}

const fn rule(access: Access) -> Rule {
    Rule {
        access,
        streaming: false,
        service_checks_tablet: false,
    }
}

const fn streaming(access: Access) -> Rule {
    Rule {
        access,
        streaming: true,
        service_checks_tablet: false,
    }
}

/// A tablet's call whose service checks the tablet's credential itself.
const fn checked_by_service(access: Access) -> Rule {
    Rule {
        access,
        streaming: false,
        service_checks_tablet: true,
    }
}

use Access::{Device, Owner, OwnerOrDevice, Public};

/// Every public RPC, by full method path.
pub const POLICY: &[(&str, Rule)] = &[
    ("/pos.v1.UserService/StartOAuthLogin", rule(Public)),
    ("/pos.v1.UserService/CompleteOAuthLogin", rule(Public)),
    ("/pos.v1.UserService/LoginWithProviderToken", rule(Public)),
    ("/pos.v1.UserService/SignUp", rule(Public)),
    ("/pos.v1.UserService/RefreshTokens", rule(Public)),
    ("/pos.v1.UserService/Logout", rule(Owner)),
    ("/pos.v1.UserService/GetMe", rule(Owner)),
    ("/pos.v1.UserService/GetJwks", rule(Public)),
    ("/pos.v1.StoreService/GetMyStore", rule(Owner)),
    ("/pos.v1.StoreService/ListDevices", rule(Owner)),
    ("/pos.v1.StoreService/IssueDeviceToken", rule(Owner)),
    ("/pos.v1.StoreService/RevokeDevice", rule(Owner)),
    ("/pos.v1.StoreService/CreateProduct", rule(Owner)),
    ("/pos.v1.StoreService/UpdateProduct", rule(Owner)),
    ("/pos.v1.StoreService/DeleteProduct", rule(Owner)),
    ("/pos.v1.StoreService/Restock", rule(Owner)),
    ("/pos.v1.StoreService/ListProductHistory", rule(Owner)),
    ("/pos.v1.StoreService/ListProducts", rule(OwnerOrDevice)),
    (
        "/pos.v1.TradeService/PlaceOrder",
        checked_by_service(Device),
    ),
    ("/pos.v1.TradeService/GetCurrentTrade", rule(Device)),
    ("/pos.v1.TradeService/WatchCurrentTrade", streaming(Device)),
    ("/pos.v1.TradeService/ListOpenTrades", rule(Owner)),
    ("/pos.v1.TradeService/GetOpenTrade", rule(Owner)),
    ("/pos.v1.TradeService/PayCash", rule(Owner)),
    ("/pos.v1.TradeService/PayCard", rule(Owner)),
    ("/pos.v1.TradeService/ListPayments", rule(Owner)),
    ("/pos.v1.TradeService/WatchOpenTrades", streaming(Owner)),
    ("/pos.v1.SettlementService/GetProductSales", rule(Owner)),
    ("/pos.v1.SettlementService/GetSettlement", rule(Owner)),
    ("/pos.v1.SettlementService/ListSettlements", rule(Owner)),
    ("/pos.v1.SettlementService/GetSettlementDetail", rule(Owner)),
    ("/pos.v1.SettlementService/ListAggregationRuns", rule(Owner)),
    ("/pos.v1.SettlementService/RunAggregation", rule(Owner)),
];

/// Infrastructure services the edge answers itself, open to anyone.
pub const INFRASTRUCTURE: [&str; 3] = [
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// What the edge does with a request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// A public RPC, with its rule and service name.
    Rpc { service: &'static str, rule: Rule },
    /// Health or reflection.
    Infrastructure { service: &'static str },
    /// A service-to-service API: never forwarded.
    Internal,
    /// Nothing we serve.
    Unknown,
}

/// Infrastructure the edge does not answer: a health Watch is a stream that anyone could
/// keep open, holding a connection for nothing; probes use Check.
const NOT_ROUTED: [&str; 1] = ["/grpc.health.v1.Health/Watch"];

/// Classifies a request path `/package.Service/Method`.
pub fn route(path: &str) -> Route {
    if NOT_ROUTED.contains(&path) {
        return Route::Unknown;
    }
    if let Some((method, rule)) = POLICY.iter().find(|(method, _)| *method == path) {
        let service = service_of(method).unwrap_or_default();
        return Route::Rpc {
            service,
            rule: *rule,
        };
    }
    let Some(service) = service_of(path) else {
        return Route::Unknown;
    };
    if let Some(infra) = INFRASTRUCTURE.iter().find(|name| **name == service) {
        return Route::Infrastructure { service: infra };
    }
    if pos_proto::INTERNAL_SERVICES.contains(&service) {
        return Route::Internal;
    }
    Route::Unknown
}

/// `/pkg.Service/Method` → `pkg.Service`.
fn service_of(path: &str) -> Option<&str> {
    let rest = path.strip_prefix('/')?;
    let (service, method) = rest.split_once('/')?;
    (!service.is_empty() && !method.is_empty() && !method.contains('/')).then_some(service)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use prost::Message;
    use prost_types::FileDescriptorSet;

    use super::*;

    fn methods_of(services: &[&str]) -> BTreeSet<String> {
        let set =
            FileDescriptorSet::decode(pos_proto::FILE_DESCRIPTOR_SET).expect("descriptor set");
        let mut methods = BTreeSet::new();
        for file in set.file {
            let package = file.package().to_string();
            for service in file.service {
                let full = format!("{package}.{}", service.name());
                if services.contains(&full.as_str()) {
                    for method in service.method {
                        methods.insert(format!("/{full}/{}", method.name()));
                    }
                }
            }
        }
        methods
    }

    #[test]
    fn every_public_rpc_has_exactly_one_rule_and_nothing_else_does() {
        let public = methods_of(&pos_proto::PUBLIC_SERVICES);
        let table: BTreeSet<String> = POLICY.iter().map(|(m, _)| m.to_string()).collect();
        assert_eq!(table.len(), POLICY.len(), "duplicate rows in POLICY");
        let missing: Vec<_> = public.difference(&table).collect();
        let extra: Vec<_> = table.difference(&public).collect();
        assert!(
            missing.is_empty(),
            "public RPCs without a policy: {missing:?}"
        );
        assert!(
            extra.is_empty(),
            "policy rows for RPCs that do not exist: {extra:?}"
        );
    }

    #[test]
    fn internal_rpcs_are_never_routed() {
        for method in methods_of(&pos_proto::INTERNAL_SERVICES) {
            assert_eq!(route(&method), Route::Internal, "{method}");
        }
        assert_eq!(route("/pos.v1.StoreService/NoSuchMethod"), Route::Unknown);
        assert_eq!(route("/evil.Service/Method"), Route::Unknown);
        assert_eq!(
            route("/pos.v1.StoreService/ListProducts/extra"),
            Route::Unknown
        );
        assert_eq!(route("/"), Route::Unknown);
        assert!(matches!(
            route("/grpc.health.v1.Health/Check"),
            Route::Infrastructure { .. }
        ));
        assert_eq!(route("/grpc.health.v1.Health/Watch"), Route::Unknown);
    }

    /// Leaving a tablet's credential to the service is a promise the service keeps (the
    /// store checks PlaceOrder's tablet with its reservation): no other row may claim it,
    /// and only a tablets-only RPC can, since its caller always has a credential.
    #[test]
    fn only_place_order_leaves_the_tablet_check_to_its_service() {
        let left: Vec<(&str, Access)> = POLICY
            .iter()
            .filter(|(_, rule)| rule.service_checks_tablet)
            .map(|(method, rule)| (*method, rule.access))
            .collect();
        assert_eq!(left, [("/pos.v1.TradeService/PlaceOrder", Access::Device)]);
        assert!(matches!(
            route("/pos.v1.TradeService/PlaceOrder"),
            Route::Rpc { rule, .. } if rule.service_checks_tablet && !rule.streaming
        ));
        assert!(matches!(
            route("/pos.v1.TradeService/GetCurrentTrade"),
            Route::Rpc { rule, .. } if !rule.service_checks_tablet
        ));
    }

    #[test]
    fn streaming_rpcs_are_marked() {
        let set =
            FileDescriptorSet::decode(pos_proto::FILE_DESCRIPTOR_SET).expect("descriptor set");
        for file in &set.file {
            for service in &file.service {
                for method in &service.method {
                    let path = format!("/{}.{}/{}", file.package(), service.name(), method.name());
                    if let Route::Rpc { rule, .. } = route(&path) {
                        assert_eq!(rule.streaming, method.server_streaming(), "{path}");
                    }
                }
            }
        }
    }
}
