//! The checks of a batch before anything of it is written: each record's own fields, its
//! key given once, what it refers to (and whose that is), values no two records may hold,
//! and no record moving between clients.

use std::collections::{HashMap, HashSet};

use super::{Known, RecordError, Upsert, error_id, singular};
use crate::model::FieldError;
use crate::store::records::owners;
use crate::store::{StoreError, Tx};

/// Appends to `errs` every error of `records` (each with its index in the batch); `known`
/// is what earlier parts of the same batch found, and learns what this part looks up.
pub(super) async fn check<T: Upsert>(
    tx: &mut Tx,
    records: &[(usize, T)],
    known: &mut Known,
    errs: &mut Vec<RecordError>,
) -> Result<(), StoreError> {
    let entity = T::ENTITY;
    let push = |errs: &mut Vec<RecordError>, index: usize, rec: &T, fe: FieldError| {
        errs.push(RecordError {
            entity: entity.into(),
            index: Some(index),
            id: Some(error_id(rec.key())),
            field: fe.field,
            reason: fe.reason,
        })
    };

    for (index, rec) in records {
        let mut fe = Vec::new();
        rec.check(&mut fe);
        crate::model::check_record_chars(rec, &mut fe);
        for e in fe {
            push(errs, *index, rec, e);
        }
        if let Some(first) = known.seen.insert(rec.key().to_string(), *index) {
            push(
                errs,
                *index,
                rec,
                FieldError::new(
                    T::KEY,
                    format!("{} appears twice in this batch (also at index {first})", crate::model::quoted(rec.key())),
                ),
            );
        }
    }

    // References: the ids per table that no earlier part looked up, looked up once.
    let mut named: HashMap<&'static str, HashSet<&str>> = HashMap::new();
    for (_, rec) in records {
        for (_, table, id) in rec.refs() {
            named.entry(table).or_default().insert(id);
        }
    }
    for (table, ids) in &named {
        let cache = known.owners.entry(table).or_default();
        let wanted = to_look_up(cache, ids, Known::MOST_OWNERS);
        if wanted.is_empty() {
            continue;
        }
        let mut found = owners(tx, table, &wanted).await?;
        cache.extend(wanted.iter().map(|id| (id.to_string(), found.remove(*id))));
    }
    for (index, rec) in records {
        for (field, table, id) in rec.refs() {
            match known.owners.get(table).and_then(|m| m.get(id)).and_then(Option::as_ref) {
                None => push(
                    errs,
                    *index,
                    rec,
                    FieldError::new(field, format!("unknown {} {}", singular(table), crate::model::quoted(id))),
                ),
                Some(owner) if table != "clients" && Some(owner.as_str()) != rec.client() => push(
                    errs,
                    *index,
                    rec,
                    FieldError::new(
                        field,
                        format!("{} {} belongs to another client", singular(table), crate::model::quoted(id)),
                    ),
                ),
                Some(_) => {}
            }
        }
    }
    // Values that name one record (a contact's chat id): not given to two in the batch, nor
    // to one while another in the store holds it (unless the batch gives that one another).
    let mut given: HashMap<(&'static str, String), &str> = HashMap::new();
    for (index, rec) in records {
        for (field, value) in rec.unique_values() {
            match given.get(&(field, value.clone())) {
                Some(other) if *other != rec.key() => {
                    let why = format!("{value} is also given to {} in this batch", crate::model::quoted(other));
                    push(errs, *index, rec, FieldError::new(field, why));
                }
                _ => {
                    given.insert((field, value), rec.key());
                }
            }
        }
    }
    let in_batch: HashSet<&str> = records.iter().map(|(_, r)| r.key()).collect();
    let fields: HashSet<&'static str> = given.keys().map(|(f, _)| *f).collect();
    for field in fields {
        let values: Vec<&str> = given.keys().filter(|(f, _)| *f == field).map(|(_, v)| v.as_str()).collect();
        let held = crate::store::records::holders(tx, T::TABLE, field, &values).await?;
        for (index, rec) in records {
            for (f, value) in rec.unique_values() {
                if f == field
                    && let Some(holder) = held.get(&value)
                    && holder != rec.key()
                    && !in_batch.contains(holder.as_str())
                {
                    let why = format!(
                        "{value} is {} {}'s already; one chat reaches one contact (take it off that one first)",
                        singular(T::TABLE),
                        crate::model::quoted(holder)
                    );
                    push(errs, *index, rec, FieldError::new(field, why));
                }
            }
        }
    }
    // A record does not move between clients: what hangs off it (a job's visuals, deliveries
    // and artwork) stays with the client it was sent for and would show the other's job.
    if T::TABLE != "clients" && T::KEY != "client_id" {
        let keys: Vec<&str> = records.iter().filter(|(_, r)| r.client().is_some()).map(|(_, r)| r.key()).collect();
        let was = if keys.is_empty() { HashMap::new() } else { owners(tx, T::TABLE, &keys).await? };
        for (index, rec) in records {
            if let (Some(old), Some(new)) = (was.get(rec.key()), rec.client())
                && old != new
            {
                let why = format!(
                    "{} {} is client {}'s; a record does not move between clients (delete it, then send it anew)",
                    singular(T::TABLE),
                    crate::model::quoted(rec.key()),
                    crate::model::quoted(old)
                );
                push(errs, *index, rec, FieldError::new("client_id", why));
            }
        }
    }
    Ok(())
}

/// Which of the ids a part names (`ids`) must be looked up, given what earlier parts found
/// (`cache`). A cache that would pass `most` ids is emptied first, and then every id the part
/// names is looked up again: emptied after the choice, it would lose ids the part relies on.
fn to_look_up<'a>(cache: &mut HashMap<String, Option<String>>, ids: &HashSet<&'a str>, most: usize) -> Vec<&'a str> {
    let mut wanted: Vec<&str> = ids.iter().copied().filter(|id| !cache.contains_key(*id)).collect();
    if cache.len() + wanted.len() > most {
        cache.clear();
        wanted = ids.iter().copied().collect();
    }
    wanted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_cache_is_emptied_before_the_part_is_looked_up() {
        let mut cache: HashMap<String, Option<String>> =
            [("J-1", "C-1"), ("J-2", "C-1")].into_iter().map(|(j, c)| (j.into(), Some(c.into()))).collect();
        // Room for the new id: only it is looked up, and what is known stays.
        let part: HashSet<&str> = ["J-1", "J-3"].into_iter().collect();
        assert_eq!(to_look_up(&mut cache, &part, 3), vec!["J-3"]);
        assert_eq!(cache.len(), 2);
        // No room: the cache goes, and J-1 (known before) is looked up with the rest, so no
        // id the part names is left unknown.
        let part: HashSet<&str> = ["J-1", "J-4", "J-5"].into_iter().collect();
        let mut wanted = to_look_up(&mut cache, &part, 3);
        wanted.sort_unstable();
        assert_eq!(wanted, vec!["J-1", "J-4", "J-5"]);
        assert!(cache.is_empty());
    }
}
