//! The JSON Patch between the object before and after the rules: a diff that compares subtrees
//! before walking them, so the equal bulk of a pod costs a comparison, not an allocation per
//! node (json-patch's own diff builds and escapes a path for every node it visits).

use super::pod::find;
use json_patch::jsonptr::{Pointer, PointerBuf};
use json_patch::{AddOperation, Patch, PatchOperation, RemoveOperation, ReplaceOperation};
use serde_json::Value;

/// Takes `after` by value: new subtrees move into the operations instead of being copied.
pub fn diff(before: &Value, after: Value) -> Patch {
    let mut ops = Vec::new();
    walk(before, after, &mut Vec::new(), &mut ops);
    Patch(ops)
}

/// Operations turning field `key` of object `before` (at path `at`) into `after`: for a rule
/// that computed a field's new value from the original.
pub fn diff_field<'a>(
    before: &'a Value,
    key: &'a str,
    after: Value,
    at: &[Step<'a>],
    ops: &mut Vec<PatchOperation>,
) {
    let mut path = at.to_vec();
    path.push(Step::Key(key));
    match before.as_object().and_then(|b| find(b, key)) {
        Some((_, old)) => walk(old, after, &mut path, ops),
        None => ops.push(PatchOperation::Add(AddOperation {
            path: pointer(&path, None),
            value: after,
        })),
    }
}

/// One step of a path; turned into an escaped pointer only when an operation is emitted.
#[derive(Clone, Copy, Debug)]
pub enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// `path`, then `last` when given (a key only the new value has).
fn pointer(path: &[Step<'_>], last: Option<&str>) -> PointerBuf {
    let mut p = PointerBuf::new();
    for step in path {
        match *step {
            Step::Key(k) => p.push_back(k),
            Step::Index(i) => p.push_back(i),
        }
    }
    if let Some(k) = last {
        p.push_back(k);
    }
    p
}

/// Equality that compares maps position by position when their keys are in the same order
/// (the rules only append keys, so they usually are) instead of hashing every key.
pub fn same(before: &Value, after: &Value) -> bool {
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            if b.len() != a.len() {
                return false;
            }
            for ((bk, bv), (ak, av)) in b.iter().zip(a) {
                if bk != ak {
                    // Same size, other order: look each key up (by scan in small maps).
                    return a
                        .iter()
                        .all(|(k, av)| find(b, k).is_some_and(|(_, bv)| same(bv, av)));
                }
                if !same(bv, av) {
                    return false;
                }
            }
            true
        }
        (Value::Array(b), Value::Array(a)) => {
            b.len() == a.len() && b.iter().zip(a).all(|(x, y)| same(x, y))
        }
        _ => before == after,
    }
}

/// Path steps borrow keys from `before` only: `after` is consumed as the walk goes.
fn walk<'a>(
    before: &'a Value,
    after: Value,
    path: &mut Vec<Step<'a>>,
    ops: &mut Vec<PatchOperation>,
) {
    if same(before, &after) {
        return;
    }
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            // `a` is consumed below, so the keys it lacks are found first (looked up only when
            // the key sequences differ).
            let same_keys = a.len() == b.len() && a.keys().zip(b.keys()).all(|(x, y)| x == y);
            let removed: Vec<&'a String> = if same_keys {
                Vec::new()
            } else {
                b.keys().filter(|k| find(&a, k).is_none()).collect()
            };
            let mut in_order = b.iter().peekable();
            for (key, new) in a {
                let old = match in_order.peek() {
                    Some((k, v)) if **k == key => {
                        let kv = (k.as_str(), *v);
                        in_order.next();
                        Some(kv)
                    }
                    _ => find(b, &key).map(|(k, v)| (k.as_str(), v)),
                };
                match old {
                    Some((k, old)) => {
                        path.push(Step::Key(k));
                        walk(old, new, path, ops);
                        path.pop();
                    }
                    None => ops.push(PatchOperation::Add(AddOperation {
                        path: pointer(path, Some(&key)),
                        value: new,
                    })),
                }
            }
            for key in removed {
                path.push(Step::Key(key));
                ops.push(PatchOperation::Remove(RemoveOperation {
                    path: pointer(path, None),
                }));
                path.pop();
            }
        }
        (Value::Array(b), Value::Array(a)) if b.len() == a.len() => {
            for (i, (old, new)) in b.iter().zip(a).enumerate() {
                path.push(Step::Index(i));
                walk(old, new, path, ops);
                path.pop();
            }
        }
        // Arrays that changed length: json-patch's diff knows the index shifts.
        (Value::Array(_), after @ Value::Array(_)) => {
            rebase(json_patch::diff(before, &after), &pointer(path, None), ops)
        }
        (_, after) => ops.push(PatchOperation::Replace(ReplaceOperation {
            path: pointer(path, None),
            value: after,
        })),
    }
}

/// The same patch for the object `path` points into (a pod template inside its workload, an
/// item inside a List).
pub fn under(patch: &Patch, path: &[&str]) -> Patch {
    let mut at = PointerBuf::new();
    for token in path {
        at.push_back(*token);
    }
    let mut ops = Vec::with_capacity(patch.0.len());
    rebase(patch.clone(), &at, &mut ops);
    Patch(ops)
}

fn rebase(patch: Patch, at: &Pointer, ops: &mut Vec<PatchOperation>) {
    use json_patch::{CopyOperation, MoveOperation, TestOperation};
    for op in patch.0 {
        ops.push(match op {
            PatchOperation::Add(o) => PatchOperation::Add(AddOperation {
                path: at.concat(&o.path),
                value: o.value,
            }),
            PatchOperation::Remove(o) => PatchOperation::Remove(RemoveOperation {
                path: at.concat(&o.path),
            }),
            PatchOperation::Replace(o) => PatchOperation::Replace(ReplaceOperation {
                path: at.concat(&o.path),
                value: o.value,
            }),
            PatchOperation::Move(o) => PatchOperation::Move(MoveOperation {
                from: at.concat(&o.from),
                path: at.concat(&o.path),
            }),
            PatchOperation::Copy(o) => PatchOperation::Copy(CopyOperation {
                from: at.concat(&o.from),
                path: at.concat(&o.path),
            }),
            PatchOperation::Test(o) => PatchOperation::Test(TestOperation {
                path: at.concat(&o.path),
                value: o.value,
            }),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(before: Value, after: Value) {
        let patch = diff(&before, after.clone());
        let mut applied = before.clone();
        json_patch::patch(&mut applied, &patch).unwrap();
        assert_eq!(applied, after, "{patch:?}");
    }

    #[test]
    fn patches_apply_to_give_the_target() {
        check(json!({ "a": 1 }), json!({ "a": 1 }));
        check(
            json!({ "a": 1, "b": { "c": [1, 2] } }),
            json!({ "a": 2, "b": { "c": [1, 3], "d": null } }),
        );
        check(
            json!({ "k/x~y": { "z": 1 } }),
            json!({ "k/x~y": { "z": 2 }, "n~1": 3 }),
        );
        check(json!({ "list": [1, 2, 3] }), json!({ "list": [1, 3] }));
        check(
            json!({ "list": [1] }),
            json!({ "list": [1, { "new": true }] }),
        );
        check(json!({ "gone": 1, "kept": 2 }), json!({ "kept": 2 }));
        check(json!([{ "a": 1 }]), json!({ "a": 1 }));
    }

    #[test]
    fn under_moves_every_operation_below_the_path() {
        let inner = diff(
            &json!({ "a": 1, "b": [1] }),
            json!({ "a": 2, "b": [1, 2], "c/d": 3 }),
        );
        let mut outer = json!({ "spec": { "template": { "a": 1, "b": [1] } } });
        json_patch::patch(&mut outer, &under(&inner, &["spec", "template"])).unwrap();
        assert_eq!(
            outer,
            json!({ "spec": { "template": { "a": 2, "b": [1, 2], "c/d": 3 } } })
        );
    }

    #[test]
    fn equal_subtrees_produce_nothing() {
        let big = json!({ "env": (0..100).map(|i| json!({ "name": i })).collect::<Vec<_>>() });
        let mut after = json!({ "big": big.clone(), "x": 1 });
        after["x"] = json!(2);
        let patch = diff(&json!({ "big": big, "x": 1 }), after);
        assert_eq!(patch.0.len(), 1);
    }
}
