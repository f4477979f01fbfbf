//! Customer satisfaction: one question after a conversation is resolved,
//! answered 1 to 5 on the conversation's channel. Scores 4 and 5 count as
//! satisfied. Summaries keep counts, not averages, so they add up across
//! days, operators and instances without losing precision.

use std::collections::BTreeMap;
use std::ops::AddAssign;

use serde::{Deserialize, Serialize};

use crate::ids::{MemberId, TeamId};
use crate::FieldError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Score(u8);

impl Score {
    pub fn new(value: u8) -> Result<Self, FieldError> {
        if (1..=5).contains(&value) {
            Ok(Self(value))
        } else {
            Err(FieldError::new(
                "invalid_score",
                "score",
                "a score is 1 to 5",
            ))
        }
    }

    /// A customer's reply on a messenger: a digit 1 to 5 (`"5"`, `"4!"`)
    /// or 1 to 5 stars. `None` for anything else (it is just a message).
    pub fn from_reply(reply: &str) -> Option<Self> {
        // Emoji keyboards add a variation selector after each star.
        let reply: String = reply.chars().filter(|c| *c != '\u{fe0f}').collect();
        let reply = reply.trim().trim_end_matches(['!', '.', ')']);
        let stars = reply.chars().filter(|c| matches!(c, '⭐' | '★')).count();
        let value = if stars > 0 && stars == reply.chars().count() {
            u8::try_from(stars).ok()?
        } else {
            reply.parse().ok()?
        };
        Self::new(value).ok()
    }

    pub fn get(self) -> u8 {
        self.0
    }

    pub fn is_satisfied(self) -> bool {
        self.0 >= 4
    }
}

impl TryFrom<u8> for Score {
    type Error = FieldError;
    fn try_from(value: u8) -> Result<Self, FieldError> {
        Score::new(value)
    }
}

impl From<Score> for u8 {
    fn from(score: Score) -> Self {
        score.0
    }
}

/// One answered survey, attributed to who resolved the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rating {
    pub operator: Option<MemberId>,
    pub team: Option<TeamId>,
    pub score: Score,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub count: u64,
    pub sum: u64,
    /// Scores of 4 or 5.
    pub satisfied: u64,
}

impl Summary {
    pub fn add(&mut self, score: Score) {
        self.count += 1;
        self.sum += u64::from(score.get());
        self.satisfied += u64::from(score.is_satisfied());
    }

    /// Mean score, 1.0 to 5.0; `None` before any answer.
    pub fn average(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum as f64 / self.count as f64)
    }

    /// Share of satisfied answers, 0.0 to 1.0; `None` before any answer.
    pub fn satisfied_share(&self) -> Option<f64> {
        (self.count > 0).then(|| self.satisfied as f64 / self.count as f64)
    }
}

impl AddAssign for Summary {
    fn add_assign(&mut self, other: Self) {
        self.count += other.count;
        self.sum += other.sum;
        self.satisfied += other.satisfied;
    }
}

impl FromIterator<Score> for Summary {
    fn from_iter<I: IntoIterator<Item = Score>>(scores: I) -> Self {
        let mut summary = Summary::default();
        scores.into_iter().for_each(|s| summary.add(s));
        summary
    }
}

/// Per operator; ratings with no operator are left out.
pub fn by_operator(ratings: &[Rating]) -> BTreeMap<MemberId, Summary> {
    group(ratings, |r| r.operator)
}

/// Per team; ratings with no team are left out.
pub fn by_team(ratings: &[Rating]) -> BTreeMap<TeamId, Summary> {
    group(ratings, |r| r.team)
}

fn group<K: Ord>(ratings: &[Rating], key: impl Fn(&Rating) -> Option<K>) -> BTreeMap<K, Summary> {
    let mut groups: BTreeMap<K, Summary> = BTreeMap::new();
    for rating in ratings {
        if let Some(k) = key(rating) {
            groups.entry(k).or_default().add(rating.score);
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use uuid::Uuid;

    fn score(n: u8) -> Score {
        Score::new(n).unwrap()
    }

    fn rating(operator: u128, team: Option<u128>, n: u8) -> Rating {
        Rating {
            operator: Some(MemberId(Uuid::from_u128(operator))),
            team: team.map(|t| TeamId(Uuid::from_u128(t))),
            score: score(n),
        }
    }

    #[test]
    fn scores_are_one_to_five() {
        assert!(Score::new(0).is_err());
        assert_eq!(Score::new(6).unwrap_err().field, "score");
        assert_eq!(score(5).get(), 5);
        assert!(score(4).is_satisfied() && !score(3).is_satisfied());
        assert_eq!(serde_json::from_str::<Score>("4").unwrap(), score(4));
        assert!(serde_json::from_str::<Score>("9").is_err());
    }

    #[test]
    fn replies_are_read_as_scores_when_they_are_one() {
        for (reply, expected) in [
            ("5", Some(5)),
            (" 4! ", Some(4)),
            ("1.", Some(1)),
            ("⭐⭐⭐", Some(3)),
            ("★★★★★", Some(5)),
            ("⭐\u{fe0f}⭐\u{fe0f}", Some(2)),
            ("⭐⭐⭐⭐⭐⭐", None),
            ("0", None),
            ("10", None),
            ("thanks!", None),
            ("5 stars", None),
            ("", None),
        ] {
            assert_eq!(
                Score::from_reply(reply).map(Score::get),
                expected,
                "{reply:?}"
            );
        }
    }

    #[test]
    fn summaries_per_operator_and_team() {
        let ratings = [
            rating(1, Some(10), 5),
            rating(1, Some(10), 3),
            rating(2, Some(10), 4),
            rating(2, None, 1),
        ];
        let operators = by_operator(&ratings);
        let olga = operators[&MemberId(Uuid::from_u128(1))];
        assert_eq!(
            (olga.count, olga.average(), olga.satisfied_share()),
            (2, Some(4.0), Some(0.5))
        );
        let teams = by_team(&ratings);
        assert_eq!(teams.len(), 1);
        let team = teams[&TeamId(Uuid::from_u128(10))];
        assert_eq!(team.count, 3);
        assert_eq!(team.satisfied_share(), Some(2.0 / 3.0));
        assert_eq!(Summary::default().average(), None);
    }

    proptest! {
        #[test]
        fn summaries_add_up(a in proptest::collection::vec(1u8..=5, 0..50), b in proptest::collection::vec(1u8..=5, 0..50)) {
            let left: Summary = a.iter().map(|n| score(*n)).collect();
            let right: Summary = b.iter().map(|n| score(*n)).collect();
            let whole: Summary = a.iter().chain(&b).map(|n| score(*n)).collect();
            let mut sum = left;
            sum += right;
            prop_assert_eq!(sum, whole);
            if let (Some(avg), Some(share)) = (whole.average(), whole.satisfied_share()) {
                prop_assert!((1.0..=5.0).contains(&avg));
                prop_assert!((0.0..=1.0).contains(&share));
            }
        }
    }
}
