//! Points where a test can make the trade role fail as if its process died there. The
//! hooks exist only with the `fault-injection` feature, which only the test suite turns
//! on (through the root package's dev-dependencies): without it [`Faults`] is empty and
//! every check below answers "carry on".

#[cfg(feature = "fault-injection")]
use std::sync::Arc;

use pos_trade_storage::OrderId;
use tonic::Status;

/// Where a test may stop the placing of an order.
#[cfg(feature = "fault-injection")]
pub trait OrderFaults: Send + Sync + 'static {
    /// Asked right after the store reserved `order`'s stock, before the order is
    /// committed. `true` stops the order there as a crash would: it is neither
    /// committed nor cancelled, and the caller is answered UNAVAILABLE.
    fn crash_after_reserve(&self, order: &OrderId) -> bool;
}

/// The faults injected into one trade role: none, unless a test built it with some.
#[derive(Clone, Default)]
pub struct Faults {
    #[cfg(feature = "fault-injection")]
    orders: Option<Arc<dyn OrderFaults>>,
}

impl Faults {
    pub fn none() -> Self {
        Self::default()
    }

    /// Ordering asks `orders` where to stop.
    #[cfg(feature = "fault-injection")]
    pub fn injected(orders: Arc<dyn OrderFaults>) -> Self {
        Self {
            orders: Some(orders),
        }
    }

    /// Fails when a test wants this order to stop right after its stock was reserved.
    #[cfg(feature = "fault-injection")]
    pub(crate) fn after_reserve(&self, order: &OrderId) -> Result<(), Status> {
        match &self.orders {
            Some(orders) if orders.crash_after_reserve(order) => Err(Status::unavailable(format!(
                "fault injected: the trade role stopped after reserving order {}",
                order.as_str()
            ))),
            _ => Ok(()),
        }
    }

    /// Without the feature nothing is ever injected.
    #[cfg(not(feature = "fault-injection"))]
    #[inline(always)]
    pub(crate) fn after_reserve(&self, _order: &OrderId) -> Result<(), Status> {
        Ok(())
    }
}
