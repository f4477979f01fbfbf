//! Who is calling: write keys (tracking), secret keys and sessions (everything else).

mod password;
mod principal;
mod secrets;
pub mod throttle;

pub use password::{hash_password, verify_password};
pub use principal::{Actor, FormCsrf, HasCsrf, Principal, WriteKeyWorkspace, SESSION_COOKIE};
pub use secrets::{hash_secret, new_key, new_token, NewKey};
