//! The JSON Patch between the object before and after the rules: a diff that compares subtrees
//! before walking them, so the equal bulk of a pod costs a comparison, not an allocation per
//! node (json-patch's own diff builds and escapes a path for every node it visits).

use json_patch::jsonptr::{Pointer, PointerBuf};
use json_patch::{AddOperation, Patch, PatchOperation, RemoveOperation, ReplaceOperation};
use serde_json::Value;

pub fn diff(before: &Value, after: &Value) -> Patch {
    let mut ops = Vec::new();
    walk(before, after, &mut Vec::new(), &mut ops);
    Patch(ops)
}

/// One step of the path being walked; turned into an escaped pointer only when an operation is
/// emitted.
#[derive(Clone, Copy)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

fn pointer(path: &[Step<'_>]) -> PointerBuf {
    let mut p = PointerBuf::new();
    for step in path {
        match *step {
            Step::Key(k) => p.push_back(k),
            Step::Index(i) => p.push_back(i),
        }
    }
    p
}

/// Equality that compares maps position by position when their keys are in the same order
/// (the rules only append keys, so they usually are) instead of hashing every key.
fn same(before: &Value, after: &Value) -> bool {
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            if b.len() != a.len() {
                return false;
            }
            for ((bk, bv), (ak, av)) in b.iter().zip(a) {
                if bk != ak {
                    return before == after;
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

fn walk<'a>(
    before: &'a Value,
    after: &'a Value,
    path: &mut Vec<Step<'a>>,
    ops: &mut Vec<PatchOperation>,
) {
    if same(before, after) {
        return;
    }
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            let mut in_order = b.iter().peekable();
            let mut matched = 0;
            for (key, new) in a {
                let old = match in_order.peek() {
                    Some((k, v)) if *k == key => {
                        let v = *v;
                        in_order.next();
                        Some(v)
                    }
                    _ => b.get(key),
                };
                path.push(Step::Key(key));
                match old {
                    Some(old) => {
                        matched += 1;
                        walk(old, new, path, ops);
                    }
                    None => ops.push(PatchOperation::Add(AddOperation {
                        path: pointer(path),
                        value: new.clone(),
                    })),
                }
                path.pop();
            }
            if matched < b.len() {
                for key in b.keys().filter(|k| !a.contains_key(*k)) {
                    path.push(Step::Key(key));
                    ops.push(PatchOperation::Remove(RemoveOperation {
                        path: pointer(path),
                    }));
                    path.pop();
                }
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
        (Value::Array(_), Value::Array(_)) => {
            rebase(json_patch::diff(before, after), &pointer(path), ops)
        }
        _ => ops.push(PatchOperation::Replace(ReplaceOperation {
            path: pointer(path),
            value: after.clone(),
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
        let patch = diff(&before, &after);
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
            &json!({ "a": 2, "b": [1, 2], "c/d": 3 }),
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
        let patch = diff(&json!({ "big": big, "x": 1 }), &after);
        assert_eq!(patch.0.len(), 1);
    }
}
