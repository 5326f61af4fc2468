//! What the connection attempt ran into, seen from below the client: the WebSocket that would
//! not open (network, DNS, TLS), the online discovery of the WhatsApp Web version that failed,
//! a server whose answer to the Noise handshake the client refused (its certificate does not
//! verify). whatsapp-rust 0.7 only logs why a connection attempt failed; the relay wraps the
//! transport and HTTP client it hands the client so it can say it to staff as it is.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use whatsapp_rust::async_channel;
use whatsapp_rust::bytes::Bytes;
use whatsapp_rust::http::{HttpClient, HttpRequest, HttpResponse};
use whatsapp_rust::transport::{
    TokioWebSocketTransportFactory, Transport, TransportEvent, TransportFactory,
};

/// Why the last connection attempt did not get through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum WireFailure {
    /// The WebSocket to WhatsApp did not open.
    Network(String),
    /// The WhatsApp Web version could not be discovered online.
    Version(String),
    /// The server answered the handshake and the client refused the answer: the server's
    /// certificate chain does not verify against WhatsApp's root key.
    Certificate,
}

impl WireFailure {
    pub(super) fn describe(&self) -> String {
        match self {
            Self::Network(reason) => reason.clone(),
            Self::Version(reason) => {
                format!("version de WhatsApp Web introuvable en ligne ({reason})")
            }
            Self::Certificate => "certificat du serveur WhatsApp refusé : ce serveur n'a pas prouvé qu'il est WhatsApp (réseau intercepté ?)".into(),
        }
    }
}

/// Shared by the wrappers of one session and read by the supervisor after each attempt.
#[derive(Default)]
pub(super) struct ConnectProbe {
    failure: Mutex<Option<WireFailure>>,
}

impl ConnectProbe {
    fn record(&self, failure: WireFailure) {
        if let Ok(mut current) = self.failure.lock() {
            *current = Some(failure);
        }
    }

    /// The failure seen since the last call, if any.
    pub(super) fn take(&self) -> Option<WireFailure> {
        self.failure.lock().ok().and_then(|mut f| f.take())
    }
}

/// A French reason for a WebSocket that did not open, from the transport's error chain.
fn network_reason(err: &anyhow::Error) -> String {
    let text = format!("{err:#}");
    let lower = text.to_lowercase();
    let kind = if lower.contains("lookup") || lower.contains("resolve") || lower.contains("dns") {
        "nom du serveur introuvable (DNS)"
    } else if lower.contains("refused") {
        "serveur injoignable (connexion refusée)"
    } else if lower.contains("tls") || lower.contains("certificate") || lower.contains("handshake")
    {
        "échec de la connexion sécurisée (TLS)"
    } else if lower.contains("timed out") || lower.contains("timeout") {
        "pas de réponse du serveur (délai dépassé)"
    } else if lower.contains("unreachable") || lower.contains("no route") {
        "réseau injoignable"
    } else {
        "erreur réseau"
    };
    format!("{kind} : {text}")
}

pub(super) struct ObservedTransportFactory {
    inner: TokioWebSocketTransportFactory,
    probe: Arc<ConnectProbe>,
}

impl ObservedTransportFactory {
    pub(super) fn new(url: String, probe: Arc<ConnectProbe>) -> Self {
        Self {
            inner: TokioWebSocketTransportFactory::new().with_url(url),
            probe,
        }
    }
}

#[async_trait]
impl TransportFactory for ObservedTransportFactory {
    async fn create_transport(
        &self,
    ) -> Result<(Arc<dyn Transport>, async_channel::Receiver<TransportEvent>), anyhow::Error> {
        let (transport, events) = match self.inner.create_transport().await {
            Ok(opened) => opened,
            Err(err) => {
                self.probe
                    .record(WireFailure::Network(network_reason(&err)));
                return Err(err);
            }
        };
        let observed = Arc::new(ObservedTransport {
            inner: transport,
            probe: self.probe.clone(),
            sent: AtomicU32::new(0),
            received: Arc::new(AtomicU32::new(0)),
        });
        // Events pass through unchanged; only the frames received during the handshake are
        // counted. Closing `forwarded` when the client drops its end ends the task.
        let (forward, forwarded) = async_channel::bounded(64);
        let received = observed.received.clone();
        tokio::spawn(async move {
            while let Ok(event) = events.recv().await {
                if matches!(event, TransportEvent::DataReceived(_)) {
                    received.fetch_add(1, Ordering::Relaxed);
                }
                if forward.send(event).await.is_err() {
                    break;
                }
            }
        });
        Ok((observed, forwarded))
    }
}

struct ObservedTransport {
    inner: Arc<dyn Transport>,
    probe: Arc<ConnectProbe>,
    sent: AtomicU32,
    received: Arc<AtomicU32>,
}

#[async_trait]
impl Transport for ObservedTransport {
    async fn send(&self, data: Bytes) -> Result<(), anyhow::Error> {
        self.sent.fetch_add(1, Ordering::Relaxed);
        self.inner.send(data).await
    }

    async fn disconnect(&self) {
        // The client's hello went out (one frame), the server's answer came (one frame), and
        // the client hangs up instead of finishing the handshake: it refused the server's
        // answer, which is where the certificate chain is checked.
        if self.sent.load(Ordering::Relaxed) == 1 && self.received.load(Ordering::Relaxed) == 1 {
            self.probe.record(WireFailure::Certificate);
        }
        self.inner.disconnect().await;
    }

    fn resource_report(&self) -> Option<whatsapp_rust::TransportResourceReport> {
        self.inner.resource_report()
    }
}

pub(super) struct ObservedHttpClient {
    inner: whatsapp_rust::http::UreqHttpClient,
    probe: Arc<ConnectProbe>,
}

impl ObservedHttpClient {
    pub(super) fn new(probe: Arc<ConnectProbe>) -> Self {
        Self {
            inner: whatsapp_rust::http::UreqHttpClient::new(),
            probe,
        }
    }
}

#[async_trait]
impl HttpClient for ObservedHttpClient {
    async fn execute(&self, request: HttpRequest) -> anyhow::Result<HttpResponse> {
        // At connect time the client's only HTTP request is the version discovery.
        match self.inner.execute(request).await {
            Ok(response) if response.status_code >= 300 => {
                self.probe.record(WireFailure::Version(format!(
                    "réponse HTTP {}",
                    response.status_code
                )));
                Ok(response)
            }
            Ok(response) => Ok(response),
            Err(err) => {
                self.probe
                    .record(WireFailure::Version(network_reason(&err)));
                Err(err)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_websocket_that_would_not_open_is_named_in_french() {
        let refused = anyhow::anyhow!("IO error: Connection refused (os error 111)");
        assert!(network_reason(&refused).starts_with("serveur injoignable (connexion refusée)"));
        let dns =
            anyhow::anyhow!("failed to lookup address information: Name or service not known");
        assert!(network_reason(&dns).starts_with("nom du serveur introuvable (DNS)"));
    }
}
