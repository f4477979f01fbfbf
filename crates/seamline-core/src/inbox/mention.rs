//! `@mentions` in internal notes: who to notify. A mention is `@` plus a
//! member's handle, compared case-insensitively, standing on its own: not
//! inside a word, an e-mail address (`olga@shop.ru`), a URL path
//! (`/@olga`) or a longer name (`@olga.smith` is not `@olga`). When two
//! handles fit, the longer one wins.

use serde::Serialize;

use crate::ids::MemberId;

/// One mention: the member and the byte range of `@handle` in the body
/// (for highlighting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Mention {
    pub member: MemberId,
    pub start: usize,
    pub end: usize,
}

/// Every mention in `body`, in order, of the members given as
/// `(member, handle)` (a leading `@` on a handle is ignored).
pub fn find_mentions<S: AsRef<str>>(body: &str, members: &[(MemberId, S)]) -> Vec<Mention> {
    let mut handles: Vec<(MemberId, Vec<char>)> = members
        .iter()
        .filter_map(|(member, handle)| {
            let handle = handle.as_ref().trim().trim_start_matches('@');
            let valid = !handle.is_empty() && !handle.chars().any(breaks_handle);
            valid.then(|| (*member, handle.chars().collect()))
        })
        .collect();
    handles.sort_by_key(|(_, handle)| std::cmp::Reverse(handle.len()));

    let chars: Vec<(usize, char)> = body.char_indices().collect();
    let mut found = Vec::new();
    for (i, &(start, c)) in chars.iter().enumerate() {
        let opens = c == '@' && i.checked_sub(1).is_none_or(|p| may_precede(chars[p].1));
        if !opens {
            continue;
        }
        let rest = &chars[i + 1..];
        let hit = handles.iter().find(|(_, handle)| {
            rest.len() >= handle.len()
                && rest
                    .iter()
                    .zip(handle)
                    .all(|(&(_, a), &b)| same_letter(a, b))
                && ends_here(&rest[handle.len()..])
        });
        if let Some((member, handle)) = hit {
            let end = rest
                .get(handle.len())
                .map_or(body.len(), |&(offset, _)| offset);
            found.push(Mention {
                member: *member,
                start,
                end,
            });
        }
    }
    found
}

/// The members mentioned in `body`, each once, in order of first mention.
pub fn mentioned<S: AsRef<str>>(body: &str, members: &[(MemberId, S)]) -> Vec<MemberId> {
    let mut seen = Vec::new();
    for mention in find_mentions(body, members) {
        if !seen.contains(&mention.member) {
            seen.push(mention.member);
        }
    }
    seen
}

fn same_letter(a: char, b: char) -> bool {
    a == b || a.to_lowercase().eq(b.to_lowercase())
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

/// Characters no handle contains.
fn breaks_handle(c: char) -> bool {
    c.is_whitespace() || c == '@'
}

/// What may stand right before a mention's `@`: not part of a word, an
/// e-mail's local part or a URL.
fn may_precede(c: char) -> bool {
    !(is_word(c) || "._+%@/=&".contains(c))
}

/// The handle ends here: at the end, or before something that does not
/// continue a name, an address or a domain (`.` ends a sentence only when
/// no letter follows).
fn ends_here(after: &[(usize, char)]) -> bool {
    match after {
        [] => true,
        [(_, c), ..] if is_word(*c) || *c == '@' => false,
        [(_, '.'), (_, next), ..] => !next.is_alphanumeric(),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use uuid::Uuid;

    fn member(n: u128) -> MemberId {
        MemberId(Uuid::from_u128(n))
    }

    fn team() -> Vec<(MemberId, &'static str)> {
        vec![
            (member(1), "olga"),
            (member(2), "olga.s"),
            (member(3), "Ivan_P"),
            (member(4), "@мария"),
        ]
    }

    fn who(body: &str) -> Vec<MemberId> {
        mentioned(body, &team())
    }

    #[test]
    fn mentions_are_found_case_insensitively() {
        assert_eq!(who("@Olga please call back"), [member(1)]);
        assert_eq!(who("cc @IVAN_P, @olga"), [member(3), member(1)]);
        assert_eq!(who("@МАРИЯ посмотри"), [member(4)]);
        assert_eq!(who("(@olga) and\n@ivan_p."), [member(1), member(3)]);
        assert_eq!(who("@olga: done?"), [member(1)]);
    }

    #[test]
    fn the_longest_handle_wins() {
        assert_eq!(who("@olga.s has it"), [member(2)]);
        assert_eq!(who("ask @olga."), [member(1)]);
    }

    #[test]
    fn e_mails_urls_and_longer_names_are_not_mentions() {
        for body in [
            "write to olga@shop.ru",
            "olga@olga",
            "see https://medium.com/@olga",
            "@olga.smith",
            "@olgas",
            "@olga-k",
            "@@olga",
            "x@olga.s",
            "@olga@shop.ru",
            "@ olga",
            "@",
            "",
        ] {
            assert_eq!(who(body), [], "{body:?}");
        }
    }

    #[test]
    fn each_member_is_named_once_and_ranges_cover_the_mention() {
        let body = "@olga, @Olga! again @olga";
        assert_eq!(who(body), [member(1)]);
        let found = find_mentions(body, &team());
        assert_eq!(found.len(), 3);
        assert_eq!(&body[found[1].start..found[1].end], "@Olga");
        let cyrillic = "ок, @мария";
        let found = find_mentions(cyrillic, &team());
        assert_eq!(&cyrillic[found[0].start..found[0].end], "@мария");
    }

    #[test]
    fn blank_and_malformed_handles_are_ignored() {
        let members = [(member(1), ""), (member(2), "@"), (member(3), "two words")];
        assert!(find_mentions("@ @two words @", &members).is_empty());
    }

    proptest! {
        #[test]
        fn ranges_are_always_valid_slices(body in "\\PC{0,60}") {
            for m in find_mentions(&body, &team()) {
                prop_assert!(body.is_char_boundary(m.start) && body.is_char_boundary(m.end));
                prop_assert!(body[m.start..m.end].starts_with('@'));
            }
        }

        #[test]
        fn a_mention_after_a_space_is_found(handle in "[a-z]{1,12}", tail in "[ ,!?]{0,2}") {
            let members = [(member(9), handle.clone())];
            let body = format!("hey @{}{tail}", handle.to_uppercase());
            prop_assert_eq!(mentioned(&body, &members), vec![member(9)]);
        }
    }
}
