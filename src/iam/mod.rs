//! IBM Cloud IAM and the VPC metadata service: the endpoints ([`endpoint`]), the grants the
//! helper exchanges and the tokens that come back ([`exchange`]), the requests as IBM's clients
//! send them ([`request`]), the exchange over HTTPS ([`http`]) and the token cache in front of it
//! ([`cache`]).

pub mod cache;
pub mod endpoint;
pub mod exchange;
pub mod http;
mod problem;
pub mod proxy;
pub mod request;
pub mod trust;

pub use cache::{CachedExchange, TokenCache};
pub use endpoint::Endpoint;
pub use exchange::{deadline, Cached, Exchange, Grant, Profile, Token, BOUND, MAX_TOKEN_LIFETIME};
pub use http::{HttpExchange, Network};
