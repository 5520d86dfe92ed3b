#![doc = include_str!("../README.md")]
// An `ApiError` (status, envelope, attempts) is built once per refused request, never in a loop: its
// size on the error path costs nothing worth boxing it for.
#![allow(clippy::result_large_err)]

mod api;
mod auth;
mod config;
mod error;
mod monitor;
mod page;
mod routing;
mod server;
mod tools;

pub use auth::authorized;
pub use config::{
    DEFAULT_ADDR, DEFAULT_BODY_LIMIT, DEFAULT_GRACE, DEFAULT_MAX_INFLIGHT, GatewayConfig,
};
pub use error::ApiError;
pub use monitor::{Board, Failure, Metrics, Monitor, ProviderBoard};
pub use server::{Gateway, RequestObserver};
