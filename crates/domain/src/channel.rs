//! Which WhatsApp account connection sends the messages: chosen in the settings
//! (`RELAY_CHANNEL`), and remembered on each delivery, since a provider's error code only means
//! something together with the provider that gave it.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelKind {
    CloudApi,
    WhatsappWeb,
    Twilio,
}

impl ChannelKind {
    pub const ALL: [ChannelKind; 3] = [Self::CloudApi, Self::WhatsappWeb, Self::Twilio];

    /// The word of `RELAY_CHANNEL`, of the database and of the JSON outputs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CloudApi => "cloud-api",
            Self::WhatsappWeb => "whatsapp-web",
            Self::Twilio => "twilio",
        }
    }

    /// The channel a stored word names; `None` for any other word.
    pub fn from_stored(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == word)
    }
}

impl fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_channel_reads_back_from_its_stored_word() {
        for channel in ChannelKind::ALL {
            assert_eq!(ChannelKind::from_stored(channel.as_str()), Some(channel));
        }
        assert_eq!(ChannelKind::from_stored("recorder"), None);
        assert_eq!(ChannelKind::from_stored(""), None);
    }
}
