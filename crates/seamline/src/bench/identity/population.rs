//! The synthetic population of `bench identity`: people, their browsers, app
//! installs, loyalty cards and family tablets, and the records they leave,
//! each record carrying the truth of who really left it.
//!
//! Raw values are written the way clients send them (phones in several
//! Russian spellings, e-mails in mixed case with stray whitespace, cards with
//! spaces or dashes, junk from broken tags and placeholder form input); the
//! benchmark normalises them with the product's own rules.
//!
//! The proportions are constants below and are reported with every run
//! (`docs/BENCHMARKS.md` explains them). Every person's link is evidenced
//! somewhere in their records (each cookie and app install is logged in on
//! at least once, a loyalty card is registered with the phone the online
//! account also gives): a person nothing links (a second browser never
//! logged in) is indistinguishable from a second person, so the generator
//! does not make such people and the figures measure the rules, not luck.
//! The one exception is deliberate: anonymous browsing on a shared family
//! tablet. A session there in which nobody logs in is nobody's as the
//! product defines it (only the generator knows who held the tablet);
//! [`Record::owner`] says so, and `person` still says who held it.

use std::fmt::Write as _;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use seamline_core::identity::IdentifierKind;
use serde::Serialize;

/// Shares of people: anonymous visitors, till-only loyalty customers, and
/// (the rest) registered online customers.
const ANONYMOUS_VISITORS: f64 = 0.55;
const SHOP_ONLY: f64 = 0.07;

/// Of registered customers.
const HAS_PHONE: f64 = 0.70;
/// Of registered customers with a phone (a card is registered with one).
const HAS_CARD: f64 = 0.40;
const USES_APP: f64 = 0.25;
/// Registered customers who share a family tablet with another registered
/// customer (each with their own user id), in pairs.
const FAMILY_TABLET: f64 = 0.10;
/// Browsers and devices a registered customer uses over the period, cookie
/// churn (ITP) included: 1, 2, 3 or 4 cookies.
const COOKIES: [f64; 4] = [0.45, 0.30, 0.15, 0.10];
/// Tablet sessions in which the person logs in (the rest stay anonymous).
const TABLET_LOGIN: f64 = 0.50;
/// Sessions on a customer's own cookie after the first login that are
/// logged out (anonymous).
const LOGGED_OUT: f64 = 0.20;

/// Anonymous events whose broken tag sends a junk `userId` (`"null"`, …).
const JUNK_USER_ID: f64 = 0.04;
/// Identify calls whose e-mail is a placeholder typed into a form.
const PLACEHOLDER_EMAIL: f64 = 0.03;
/// Till purchases where the cashier typed a placeholder phone.
const JUNK_PHONE: f64 = 0.05;
/// Later identify calls that resend the e-mail / the phone (the first,
/// registration, always carries both).
const RESEND_EMAIL: f64 = 0.40;
const RESEND_PHONE: f64 = 0.25;

const JUNK_USER_IDS: [&str; 6] = ["null", "undefined", "0", "", "None", "[object Object]"];
const PLACEHOLDER_EMAILS: [&str; 3] = ["test@test.com", "TEST@TEST.COM", " test@test.com"];
const JUNK_PHONES: [&str; 2] = ["0000000000", "+7 (000) 000-00-00"];

/// The period the records are spread over, in seconds.
const PERIOD: u64 = 90 * 24 * 3600;
const EVENT_GAP: u64 = 40;

/// The identifier kinds records carry, by code.
pub const KINDS: [IdentifierKind; 5] = [
    IdentifierKind::AnonymousId,
    IdentifierKind::UserId,
    IdentifierKind::DeviceId,
    IdentifierKind::Email,
    IdentifierKind::Phone,
];
const ANON: u8 = 0;
const USER: u8 = 1;
const DEVICE: u8 = 2;
const EMAIL: u8 = 3;
const PHONE: u8 = 4;
const CARD: u8 = 5;

/// What kind of moment a record is, for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Moment {
    /// A visitor who never identifies.
    AnonymousVisitor,
    /// A customer browsing on their own cookie or app, not logged in.
    Browsing,
    /// A login or identify call (user id, maybe e-mail and phone).
    Login,
    /// A logged-in event (cookie or device plus user id).
    LoggedIn,
    /// A purchase at the till with the loyalty card and a phone.
    Till,
    /// Anonymous browsing on a family tablet two people use, in a session
    /// in which nobody logs in.
    TabletAnonymous,
    /// Anonymous browsing on a family tablet before a login in the same
    /// session.
    TabletBeforeLogin,
    /// A login or logged-in event on a family tablet.
    TabletLoggedIn,
}

impl Moment {
    pub const ALL: [Moment; 8] = [
        Moment::AnonymousVisitor,
        Moment::Browsing,
        Moment::Login,
        Moment::LoggedIn,
        Moment::Till,
        Moment::TabletAnonymous,
        Moment::TabletBeforeLogin,
        Moment::TabletLoggedIn,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Moment::AnonymousVisitor => "anonymous visitor",
            Moment::Browsing => "browsing, not logged in",
            Moment::Login => "login / identify",
            Moment::LoggedIn => "logged in",
            Moment::Till => "till purchase (card + phone)",
            Moment::TabletAnonymous => "family tablet, nobody logs in",
            Moment::TabletBeforeLogin => "family tablet, before a login",
            Moment::TabletLoggedIn => "family tablet, logged in",
        }
    }
}

/// One record: who really left it, when, and its raw identifiers.
#[derive(Debug, Clone, Copy)]
pub struct Record {
    pub person: u32,
    pub moment: Moment,
    /// Seconds into the period.
    pub time: u32,
    first_raw: u32,
    raws: u8,
}

impl Record {
    /// The person the record belongs to as the product defines it: nobody
    /// for a session on a shared device in which nobody logs in.
    pub fn owner(&self) -> Option<u32> {
        (self.moment != Moment::TabletAnonymous).then_some(self.person)
    }
}

#[derive(Debug, Clone, Copy)]
struct Raw {
    kind: u8,
    start: u32,
    len: u16,
}

/// The records, in time order, and what went into them.
pub struct Population {
    pub records: Vec<Record>,
    raws: Vec<Raw>,
    text: String,
    pub mix: Mix,
}

/// The generator's proportions as realised in one run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Mix {
    pub people: usize,
    pub anonymous_visitors: usize,
    pub registered: usize,
    pub shop_only: usize,
    /// Registered customers who share a family tablet (two per tablet).
    pub family_tablet_people: usize,
    pub registered_with_phone: usize,
    pub registered_with_card: usize,
    pub registered_with_app: usize,
    /// Cookies per registered customer, on average (family tablet excluded).
    pub cookies_per_registered: f64,
    /// Raw identifier values across all records.
    pub raw_values: usize,
    /// Junk and placeholder values among them (`null`, `test@test.com`, …).
    pub junk_values: usize,
    /// Phones by spelling: `8 916 123-45-67`, `+7 (916) 123 45 67`,
    /// `79161234567`, `+79161234567`.
    pub phone_spellings: [usize; 4],
    /// E-mails not written in lower case without whitespace.
    pub emails_respelled: usize,
    pub emails: usize,
    /// Records by moment, in the order of `Moment::ALL`.
    pub records_by_moment: Vec<(Moment, usize)>,
}

impl Population {
    /// About `records` records (exactly, unless the generator runs out of
    /// reasons to stop), deterministic for a `seed`.
    pub fn generate(records: usize, seed: u64) -> Self {
        let mut g = Generator::new(seed, records);
        while g.records.len() < records {
            g.unit();
        }
        g.finish(records)
    }

    /// The raw `(kind, value)` pairs of `record`.
    pub fn raw_identifiers<'a>(
        &'a self,
        record: &Record,
    ) -> impl Iterator<Item = (&'static IdentifierKind, &'a str)> + 'a {
        let first = record.first_raw as usize;
        self.raws[first..first + usize::from(record.raws)]
            .iter()
            .map(|raw| {
                let start = raw.start as usize;
                let kind = match raw.kind {
                    CARD => &IdentifierKind::LoyaltyCard,
                    k => &KINDS[usize::from(k)],
                };
                (kind, &self.text[start..start + usize::from(raw.len)])
            })
    }
}

struct Customer {
    person: u32,
    user_id: String,
    /// As the person types it, before any respelling.
    email: String,
    /// National significant number, a 9 followed by nine digits.
    phone: Option<u64>,
    card: Option<u64>,
    registered: bool,
}

struct Generator {
    rng: StdRng,
    records: Vec<Record>,
    raws: Vec<Raw>,
    text: String,
    /// The raws of the record being written.
    pending: Vec<Raw>,
    next_person: u32,
    mix: Mix,
    cookies: usize,
}

impl Generator {
    fn new(seed: u64, records: usize) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            records: Vec::with_capacity(records + 256),
            raws: Vec::with_capacity(records * 2),
            text: String::with_capacity(records * 48),
            pending: Vec::new(),
            next_person: 0,
            mix: Mix::default(),
            cookies: 0,
        }
    }

    /// One person, or two sharing a tablet.
    fn unit(&mut self) {
        let roll: f64 = self.rng.gen();
        if roll < ANONYMOUS_VISITORS {
            self.anonymous_visitor();
        } else if roll < ANONYMOUS_VISITORS + SHOP_ONLY {
            self.shop_only();
        } else if self.rng.gen_bool(FAMILY_TABLET / (2.0 - FAMILY_TABLET)) {
            // A pair is two registered customers: this share of units
            // makes FAMILY_TABLET the share of registered customers.
            let mut a = self.customer();
            let mut b = self.customer();
            self.mix.family_tablet_people += 2;
            self.tablet(&mut a, &mut b);
            self.customer_life(&mut a);
            self.customer_life(&mut b);
        } else {
            let mut c = self.customer();
            self.customer_life(&mut c);
        }
    }

    fn person(&mut self) -> u32 {
        self.mix.people += 1;
        self.next_person += 1;
        self.next_person - 1
    }

    fn anonymous_visitor(&mut self) {
        self.mix.anonymous_visitors += 1;
        let person = self.person();
        let cookie = self.uuid();
        for start in self.session_starts(1, 2) {
            let events = self.rng.gen_range(1..=4);
            for k in 0..events {
                let time = start + k * EVENT_GAP;
                self.anonymous(time, person, ANON, &cookie, Moment::AnonymousVisitor);
            }
        }
    }

    fn shop_only(&mut self) {
        self.mix.shop_only += 1;
        let person = self.person();
        let phone = phone_number(person);
        let card = card_number(person);
        let purchases = self.rng.gen_range(1..=6);
        self.till(person, card, phone, purchases);
    }

    fn customer(&mut self) -> Customer {
        self.mix.registered += 1;
        let person = self.person();
        let phone = self.rng.gen_bool(HAS_PHONE).then(|| phone_number(person));
        let card = (phone.is_some() && self.rng.gen_bool(HAS_CARD)).then(|| card_number(person));
        self.mix.registered_with_phone += usize::from(phone.is_some());
        self.mix.registered_with_card += usize::from(card.is_some());
        Customer {
            person,
            // Database ids: realistic, sequential from 100001.
            user_id: (100_001 + u64::from(person)).to_string(),
            email: self.email(person),
            phone,
            card,
            registered: false,
        }
    }

    /// A registered customer's own cookies, app and till purchases.
    fn customer_life(&mut self, c: &mut Customer) {
        let cookies = 1 + pick(&mut self.rng, &COOKIES);
        self.cookies += cookies;
        for _ in 0..cookies {
            let cookie = self.uuid();
            self.own_device(c, ANON, &cookie);
        }
        if self.rng.gen_bool(USES_APP) {
            self.mix.registered_with_app += 1;
            let device = self.uuid().to_uppercase();
            self.own_device(c, DEVICE, &device);
        }
        if let (Some(card), Some(phone)) = (c.card, c.phone) {
            let purchases = self.rng.gen_range(1..=4);
            self.till(c.person, card, phone, purchases);
        }
    }

    /// Sessions on one cookie or app install: anonymous at first, a login in
    /// the first, second or third session, then mostly logged in.
    fn own_device(&mut self, c: &mut Customer, kind: u8, device: &str) {
        let starts = self.session_starts(1, 4);
        let login_session = pick(&mut self.rng, &[0.4, 0.4, 0.2]).min(starts.len() - 1);
        for (n, start) in starts.into_iter().enumerate() {
            let mut t = start;
            let logged_in = n > login_session && !self.rng.gen_bool(LOGGED_OUT);
            let before = match n.cmp(&login_session) {
                std::cmp::Ordering::Less => self.rng.gen_range(1..=4),
                std::cmp::Ordering::Equal => self.rng.gen_range(0..=3),
                std::cmp::Ordering::Greater if logged_in => 0,
                std::cmp::Ordering::Greater => self.rng.gen_range(1..=4),
            };
            for _ in 0..before {
                self.anonymous(t, c.person, kind, device, Moment::Browsing);
                t += EVENT_GAP;
            }
            let after = match n.cmp(&login_session) {
                std::cmp::Ordering::Equal => {
                    self.login(t, c, kind, device, Moment::Login);
                    t += EVENT_GAP;
                    self.rng.gen_range(0..=3)
                }
                _ if logged_in => self.rng.gen_range(1..=5),
                _ => 0,
            };
            for _ in 0..after {
                self.logged_in(t, c, kind, device, Moment::LoggedIn);
                t += EVENT_GAP;
            }
        }
    }

    /// A tablet both people of a family use, each logging in on it in some
    /// of their sessions and browsing anonymously in the others.
    fn tablet(&mut self, a: &mut Customer, b: &mut Customer) {
        let tablet = self.uuid();
        for c in [a, b] {
            for start in self.session_starts(1, 5) {
                let mut t = start;
                if self.rng.gen_bool(TABLET_LOGIN) {
                    for _ in 0..self.rng.gen_range(0..=2) {
                        self.anonymous(t, c.person, ANON, &tablet, Moment::TabletBeforeLogin);
                        t += EVENT_GAP;
                    }
                    self.login(t, c, ANON, &tablet, Moment::TabletLoggedIn);
                    for _ in 0..self.rng.gen_range(0..=3) {
                        t += EVENT_GAP;
                        self.logged_in(t, c, ANON, &tablet, Moment::TabletLoggedIn);
                    }
                } else {
                    for _ in 0..self.rng.gen_range(1..=4) {
                        self.anonymous(t, c.person, ANON, &tablet, Moment::TabletAnonymous);
                        t += EVENT_GAP;
                    }
                }
            }
        }
    }

    fn till(&mut self, person: u32, card: u64, phone: u64, purchases: usize) {
        for start in self.starts(purchases) {
            let card = self.card_spelling(card);
            self.push(CARD, &card);
            if self.rng.gen_bool(JUNK_PHONE) {
                let junk = JUNK_PHONES[self.rng.gen_range(0..JUNK_PHONES.len())];
                self.junk(PHONE, junk);
            } else {
                let phone = self.phone_spelling(phone);
                self.push(PHONE, &phone);
            }
            self.record(start, person, Moment::Till);
        }
    }

    fn anonymous(&mut self, time: u64, person: u32, kind: u8, device: &str, moment: Moment) {
        self.push(kind, device);
        if self.rng.gen_bool(JUNK_USER_ID) {
            let junk = JUNK_USER_IDS[self.rng.gen_range(0..JUNK_USER_IDS.len())];
            self.junk(USER, junk);
        }
        self.record(time, person, moment);
    }

    fn login(&mut self, time: u64, c: &mut Customer, kind: u8, device: &str, moment: Moment) {
        let registration = !c.registered;
        c.registered = true;
        self.push(kind, device);
        self.push(USER, &c.user_id);
        if registration || self.rng.gen_bool(RESEND_EMAIL) {
            if self.rng.gen_bool(PLACEHOLDER_EMAIL) {
                let junk = PLACEHOLDER_EMAILS[self.rng.gen_range(0..PLACEHOLDER_EMAILS.len())];
                self.junk(EMAIL, junk);
            } else {
                let email = self.email_spelling(&c.email);
                self.push(EMAIL, &email);
            }
        }
        if let Some(phone) = c.phone {
            if registration || self.rng.gen_bool(RESEND_PHONE) {
                let phone = self.phone_spelling(phone);
                self.push(PHONE, &phone);
            }
        }
        self.record(time, c.person, moment);
    }

    fn logged_in(&mut self, time: u64, c: &Customer, kind: u8, device: &str, moment: Moment) {
        self.push(kind, device);
        self.push(USER, &c.user_id);
        self.record(time, c.person, moment);
    }

    fn push(&mut self, kind: u8, value: &str) {
        let start = u32::try_from(self.text.len()).expect("under 4 GB of raw text");
        self.text.push_str(value);
        self.pending.push(Raw {
            kind,
            start,
            len: u16::try_from(value.len()).expect("short values"),
        });
    }

    fn junk(&mut self, kind: u8, value: &str) {
        self.mix.junk_values += 1;
        self.push(kind, value);
    }

    fn record(&mut self, time: u64, person: u32, moment: Moment) {
        let first_raw = u32::try_from(self.raws.len()).expect("under 4G raw values");
        self.mix.raw_values += self.pending.len();
        let raws = u8::try_from(self.pending.len()).expect("a few identifiers");
        self.raws.append(&mut self.pending);
        self.records.push(Record {
            person,
            moment,
            time: u32::try_from(time).expect("the period fits in u32 seconds"),
            first_raw,
            raws,
        });
    }

    /// `min..=max` session start times, in order.
    fn session_starts(&mut self, min: usize, max: usize) -> Vec<u64> {
        let n = self.rng.gen_range(min..=max);
        self.starts(n)
    }

    fn starts(&mut self, n: usize) -> Vec<u64> {
        let mut starts: Vec<u64> = (0..n).map(|_| self.rng.gen_range(0..PERIOD)).collect();
        starts.sort_unstable();
        starts
    }

    fn uuid(&mut self) -> String {
        uuid::Builder::from_random_bytes(self.rng.gen())
            .into_uuid()
            .to_string()
    }

    fn email(&mut self, person: u32) -> String {
        const FIRST: [&str; 10] = [
            "Olga", "Ivan", "Maria", "Sergey", "Anna", "Dmitry", "Elena", "Alexey", "Natalia",
            "Pavel",
        ];
        const LAST: [&str; 8] = [
            "Petrova",
            "Ivanov",
            "Smirnova",
            "Kuznetsov",
            "Popova",
            "Sokolov",
            "Lebedeva",
            "Kozlov",
        ];
        const DOMAINS: [&str; 6] = [
            "mail.ru",
            "Yandex.ru",
            "gmail.com",
            "bk.ru",
            "inbox.ru",
            "list.ru",
        ];
        let first = FIRST[self.rng.gen_range(0..FIRST.len())];
        let last = LAST[self.rng.gen_range(0..LAST.len())];
        let domain = DOMAINS[self.rng.gen_range(0..DOMAINS.len())];
        format!("{first}.{last}{person}@{domain}")
    }

    fn email_spelling(&mut self, email: &str) -> String {
        self.mix.emails += 1;
        let spelling = match self.rng.gen_range(0..4) {
            0 => email.to_lowercase(),
            1 => email.to_owned(),
            2 => email.to_uppercase(),
            _ => format!("  {email} "),
        };
        self.mix.emails_respelled += usize::from(spelling != email.to_lowercase());
        spelling
    }

    fn phone_spelling(&mut self, national: u64) -> String {
        let d = national.to_string();
        let style = self.rng.gen_range(0..4);
        self.mix.phone_spellings[style] += 1;
        match style {
            0 => format!("8 {} {}-{}-{}", &d[0..3], &d[3..6], &d[6..8], &d[8..10]),
            1 => format!("+7 ({}) {} {} {}", &d[0..3], &d[3..6], &d[6..8], &d[8..10]),
            2 => format!("7{d}"),
            _ => format!("+7{d}"),
        }
    }

    fn card_spelling(&mut self, card: u64) -> String {
        let d = card.to_string();
        let mut out = String::with_capacity(16);
        match self.rng.gen_range(0..3) {
            0 => out.push_str(&d),
            n => {
                let sep = if n == 1 { ' ' } else { '-' };
                let _ = write!(out, "{}{sep}{}{sep}{}", &d[0..4], &d[4..8], &d[8..12]);
            }
        }
        out
    }

    /// Sorts the records by time (a stable order for equal times) and keeps
    /// the first `limit` generated.
    fn finish(mut self, limit: usize) -> Population {
        self.records.truncate(limit);
        let mut seen = vec![false; self.next_person as usize];
        for r in &self.records {
            seen[r.person as usize] = true;
        }
        // People whose records were all cut off by the limit do not count.
        self.mix.people = seen.iter().filter(|s| **s).count();
        let registered = self.mix.registered.max(1);
        self.mix.cookies_per_registered = self.cookies as f64 / registered as f64;
        let mut order: Vec<u32> = (0..self.records.len() as u32).collect();
        order.sort_by_key(|&i| (self.records[i as usize].time, i));
        let records: Vec<Record> = order
            .into_iter()
            .map(|i| self.records[i as usize])
            .collect();
        self.mix.records_by_moment = Moment::ALL
            .iter()
            .map(|m| (*m, records.iter().filter(|r| r.moment == *m).count()))
            .collect();
        Population {
            records,
            raws: self.raws,
            text: self.text,
            mix: self.mix,
        }
    }
}

/// A unique mobile number per person: `9` and nine digits, scrambled.
fn phone_number(person: u32) -> u64 {
    9_000_000_000 + (u64::from(person) * 387_420_489 + 12_345_678) % 1_000_000_000
}

/// A unique 12-digit loyalty card number per person.
fn card_number(person: u32) -> u64 {
    2000_0000_0000 + (u64::from(person) * 7_919 + 1_000) % 1_0000_0000
}

/// An index drawn with the given weights.
fn pick(rng: &mut StdRng, weights: &[f64]) -> usize {
    let mut roll: f64 = rng.gen();
    for (i, w) in weights.iter().enumerate() {
        if roll < *w {
            return i;
        }
        roll -= w;
    }
    weights.len() - 1
}
