//! The one error type the webview receives: a stable `code` it can branch on and a French
//! `message` it can show as is. Never a bare string to parse.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UiError {
    pub code: &'static str,
    pub message: String,
    /// Refused form fields, each shown next to its input (settings); absent otherwise.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldProblem>,
}

/// One refused field: a setting name (or `template`) and why, in French.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
}

impl UiError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            fields: Vec::new(),
        }
    }

    pub fn with_fields(
        code: &'static str,
        message: impl Into<String>,
        fields: Vec<FieldProblem>,
    ) -> Self {
        Self {
            fields,
            ..Self::new(code, message)
        }
    }

    /// The relay is still starting: the UI retries shortly.
    pub fn starting() -> Self {
        Self::new("starting", "le relais démarre…")
    }

    pub fn stopping() -> Self {
        Self::new("stopping", "le relais s'arrête")
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new("invalid", message)
    }
}

impl From<relay_engine::store::StoreError> for UiError {
    fn from(err: relay_engine::store::StoreError) -> Self {
        Self::new("store", err.to_string())
    }
}

impl From<relay_engine::carrier_sync::SyncError> for UiError {
    fn from(err: relay_engine::carrier_sync::SyncError) -> Self {
        let code = match err {
            relay_engine::carrier_sync::SyncError::NotConfigured => "not_configured",
            relay_engine::carrier_sync::SyncError::Api(_) => "api_unreachable",
            relay_engine::carrier_sync::SyncError::Store(_) => "store",
            relay_engine::carrier_sync::SyncError::Stopped => "stopping",
        };
        Self::new(code, err.to_string())
    }
}

impl From<relay_engine::ops::OpsError> for UiError {
    fn from(err: relay_engine::ops::OpsError) -> Self {
        use relay_engine::ops::OpsError;
        let code = match &err {
            OpsError::UnknownOrder(_) | OpsError::UnknownOrderId(_) => "not_found",
            OpsError::NotBroadcastYet { .. } => "not_broadcast_yet",
            OpsError::OrderClosed { .. } => "order_closed",
            OpsError::Status(_) | OpsError::History(_) => "invalid",
            OpsError::Store(_) => "store",
            OpsError::Api(_) => "api_unreachable",
        };
        Self::new(code, err.to_string())
    }
}

impl std::fmt::Display for UiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for UiError {}
