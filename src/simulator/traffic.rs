//! Realistic comment traffic for the demo: friendly comments, scams, profanity, link drops,
//! mention spam, replies, and the brand's own support account; scams in other languages,
//! self-promotion spam and honest comments in other languages, each kind noted so the demo
//! can show what became of it.

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio_util::sync::CancellationToken;

use super::Simulator;

const FRIENDLY: &[&str] = &[
    "Love this colour! 😍",
    "Where can I buy this in Lisbon?",
    "Great shot 👏👏",
    "Can't wait for the launch",
    "So cozy, I need this in blue",
    "Amazing quality as always",
    "My sister has one and swears by it",
    "Classic look, never gets old",
    "Is this back in stock soon?",
    "That's a signal that autumn is here 🍂",
];
const SCAM: &[&str] = &[
    "I made $5000 this week with a crypto signal group, DM me to earn",
    "FOREX trading changed my life 💰 ask me how",
    "Join my forex team, 20% daily returns guaranteed",
    "dm @crypto_queen_22 for the signals, thank me later",
    "DM me to earn from home, no experience needed",
];
const RUDE: &[&str] = &[
    "What an idiot idea",
    "you scumbag, refund me now",
    "only an IDIOT would buy this",
];
const LINKS: &[&str] = &[
    "Cheap followers at spamfollowers.biz",
    "Free gift card 👉 https://free-gift.example.net/claim",
    "Official store is at https://acme.com/shop 🙂",
];
const MENTIONS: &[&str] = &["@ana @bruno @carla @dani look at this!!", "@joe look!"];
// Written for the demo (in no training file): what a brand hears besides English scams.
const SCAM_ABROAD: &[&str] = &[
    "Gracias a @sofia.inversiones_fx gané 3.500€ en una semana 🙏 escríbele ya",
    "Ganhei R$ 4.200 em 5 dias com a mentora @carla.trader_br 💸 chama ela no direct",
    "Заработала 80 000 ₽ за неделю с @invest_marina_pro 💰 пишите ей в телеграм",
    "Alhamdulillah profit 12jt seminggu bareng @mentor.trading_id 🙏 langsung chat aja",
    "تواصلوا مع @abu_fahad_forex ربحت 9000 ريال في اسبوع 💰 واتساب +966 50 000 1234",
    "₹5000 लगाए और ₹48,000 मिले 🙏 @rohit_trading_guru से संपर्क करें",
];
const SELF_PROMO: &[&str] = &[
    "Check out my channel, I post makeup tutorials every week 💄 please subscribe!",
    "sígueme y te sigo de vuelta 🔄 pasen por mi canal de YouTube",
    "Hey guys subscribe to my channel, new video every Friday 🎥",
];
const FRIENDLY_ABROAD: &[&str] = &[
    "¿Tienen esta chaqueta en talla M? La quiero en azul 😍",
    "Comprei ontem e chegou hoje, qualidade ótima 👏",
    "Очень красивый цвет, где можно купить в Москве?",
    "Ukuran 38 masih ada kak? mau order 2 pasang",
];

/// The kinds of comment the demo's summary follows, with the pool each comes from.
pub const KINDS: [(&str, &[&str]); 3] = [
    ("scams in other languages", SCAM_ABROAD),
    ("self-promotion spam", SELF_PROMO),
    ("honest comments in other languages", FRIENDLY_ABROAD),
];

const SUPPORT: &[&str] =
    &["Thanks for your feedback! DM us your order number and we'll sort it out."];

/// What the generator posted, by kind.
#[derive(Debug, Default, Clone)]
pub struct TrafficStats {
    pub comments: usize,
    pub replies: usize,
    /// (kind in [`KINDS`], comment id) of each comment of those kinds.
    pub followed: Vec<(&'static str, String)>,
}

/// A seeded generator of comments on a set of posts.
pub struct Traffic {
    rng: StdRng,
    media: Vec<String>,
    top_level: Vec<String>,
    stats: TrafficStats,
}

impl Traffic {
    pub fn new(seed: u64, media: Vec<String>) -> Traffic {
        Traffic {
            rng: StdRng::seed_from_u64(seed),
            media,
            top_level: Vec::new(),
            stats: TrafficStats::default(),
        }
    }

    /// Posts one comment or reply.
    pub fn step(&mut self, sim: &Simulator) {
        if self.media.is_empty() {
            return;
        }
        // The first comments show an English scam and one of each followed kind; then
        // chance decides.
        let showcase = match self.stats.comments {
            0 => Some(("", SCAM)),
            n => KINDS.get(n - 1).copied(),
        };
        if let Some((kind, pool)) = showcase {
            let i = self.rng.random_range(0..self.media.len());
            let text = pool[self.rng.random_range(0..pool.len())];
            let user = format!("user_{}", self.rng.random_range(100..999));
            let id = sim.add_comment(&self.media[i], &user, text);
            if !kind.is_empty() {
                self.stats.followed.push((kind, id.clone()));
            }
            self.top_level.push(id);
            self.stats.comments += 1;
            return;
        }
        let roll: u32 = self.rng.random_range(0..100);
        let (pool, user): (&[&str], String) = match roll {
            0..=36 => (FRIENDLY, format!("fan_{}", self.rng.random_range(100..999))),
            37..=40 => (
                FRIENDLY_ABROAD,
                format!("fan_{}", self.rng.random_range(100..999)),
            ),
            41..=49 => (
                SCAM,
                format!("wealth.mentor{}", self.rng.random_range(1..99)),
            ),
            50..=55 => (
                SCAM_ABROAD,
                format!("invest.{}", self.rng.random_range(1..99)),
            ),
            56..=59 => (
                SELF_PROMO,
                format!("vlogger_{}", self.rng.random_range(1..99)),
            ),
            60..=67 => (RUDE, format!("angry_{}", self.rng.random_range(1..99))),
            68..=77 => (LINKS, format!("promo_{}", self.rng.random_range(1..99))),
            78..=83 => (MENTIONS, format!("tagger_{}", self.rng.random_range(1..99))),
            84..=87 => (SUPPORT, "acme_support".to_string()),
            _ => (FRIENDLY, format!("fan_{}", self.rng.random_range(100..999))),
        };
        let text = pool[self.rng.random_range(0..pool.len())];
        let reply = roll >= 88 || (roll.is_multiple_of(5) && !self.top_level.is_empty());
        if reply && !self.top_level.is_empty() {
            let parent = self.top_level[self.rng.random_range(0..self.top_level.len())].clone();
            let text = if roll.is_multiple_of(2) {
                RUDE[self.rng.random_range(0..RUDE.len())]
            } else {
                text
            };
            sim.add_reply(&parent, &user, text);
            self.stats.replies += 1;
        } else {
            // Posts are listed oldest first per account; traffic is even across them.
            let i = self.rng.random_range(0..self.media.len());
            let id = sim.add_comment(&self.media[i], &user, text);
            if let Some((kind, _)) = KINDS.iter().find(|(_, p)| std::ptr::eq(*p, pool)) {
                self.stats.followed.push((kind, id.clone()));
            }
            self.top_level.push(id);
            self.stats.comments += 1;
        }
    }

    /// Posts a comment every `every` until `stop`.
    pub async fn run(
        mut self,
        sim: Arc<Simulator>,
        every: Duration,
        stop: CancellationToken,
    ) -> TrafficStats {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return self.stats,
                _ = tokio::time::sleep(every) => self.step(&sim),
            }
        }
    }
}
