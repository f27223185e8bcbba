//! The ledger annotation in CEL: this pass's fields merged with an earlier pass's, written as
//! engine::ledger writes it (keys and fields sorted, no spaces), so the two are byte-equal.

/// What an earlier ledger must look like for the policy to merge it: the engine's own form.
/// Anything else (hand-written, collapsed to `*`) makes the policy decline the pod.
pub(super) const CANONICAL: &str = r#"^\{"v":(0|[1-9][0-9]{0,8})(,"containers":\{"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?":\[("[A-Za-z][A-Za-z.-]*",)*"[A-Za-z][A-Za-z.-]*"\](,"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?":\[("[A-Za-z][A-Za-z.-]*",)*"[A-Za-z][A-Za-z.-]*"\])*\})?(,"pod":\[("[A-Za-z][A-Za-z.-]*",)*"[A-Za-z][A-Za-z.-]*"\])?\}$"#;

/// CEL: the earlier ledger (`''` if none).
pub fn previous(key: &str) -> String {
    format!("variables.pa[?'{key}'].orValue('')")
}

/// CEL: the earlier ledger's container entries, `"name":["field",..` each: between
/// `"containers":{` and the first `}`.
fn entries() -> String {
    let prev = "variables.prev";
    format!(
        "({prev}.contains('\"containers\":{{') \
          ? {prev}.substring({prev}.indexOf('\"containers\":{{') + 14, {prev}.indexOf('}}')).split('],') \
          : [])"
    )
}

fn name(e: &str) -> String {
    format!("{e}.substring(1, {e}.indexOf('\":['))")
}

fn fields(e: &str) -> String {
    format!(
        "{e}.substring({e}.indexOf('\":[') + 3).replace(']', '').split(',').map(f, f.replace('\"', ''))"
    )
}

/// CEL: the earlier ledger's pod fields, after `,"pod":[` at its very end.
fn pod_fields() -> String {
    let prev = "variables.prev";
    format!(
        "({prev}.matches(r',\"pod\":\\[[^\\]]*\\]\\}}$') \
          ? {prev}.substring({prev}.lastIndexOf('\"pod\":[') + 7, {prev}.size() - 2).split(',').map(f, f.replace('\"', '')) \
          : [])"
    )
}

/// CEL: the earlier ledger is absent or exactly what the engine writes: its form, and every
/// list sorted without repeats (the engine writes sorted sets; a merge of anything else would
/// differ from the engine's).
pub fn well_formed() -> String {
    let sorted =
        |list: &str| format!("({list}.isSorted() && {list}.distinct().size() == {list}.size())");
    format!(
        "variables.prev == '' || (variables.prev.matches(r'{CANONICAL}') \
           && {names_sorted} && {entries}.all(e, {fields_sorted}) && {pod_sorted})",
        names_sorted = sorted(&format!("{}.map(e, {})", entries(), name("e"))),
        entries = entries(),
        fields_sorted = sorted(&fields("e")),
        pod_sorted = sorted(&pod_fields()),
    )
}

/// CEL for the ledger this pass writes ('' when it changes nothing): the earlier one's entries
/// and this pass's, merged, sorted and written without spaces.
pub fn text() -> String {
    let names = format!(
        "({}.map(e, {}) + variables.changed.map(x, x.name)).distinct().sort()",
        entries(),
        name("e")
    );
    let merged = format!(
        "({}.filter(e, {} == n).map(e, {}).flatten() \
          + variables.changed.filter(x, x.name == n).map(x, x.fields).flatten()).distinct().sort()",
        entries(),
        name("e"),
        fields("e")
    );
    let quote_all = |list: &str| format!("{list}.map(f, '\"' + f + '\"').join(',')");
    let pod = format!(
        "({} + (variables.raise ? ['terminationGracePeriodSeconds'] : [])).distinct().sort()",
        pod_fields()
    );
    format!(
        "variables.changed.size() == 0 && !variables.raise ? '' \
         : [[dyn({names}), dyn({pod})]].map(l, '{{\"v\":{version}' \
             + (l[0].size() > 0 ? ',\"containers\":{{' + l[0].map(n, '\"' + n + '\":[' + {fields} + ']').join(',') + '}}' : '') \
             + (l[1].size() > 0 ? ',\"pod\":[' + {pod_fields} + ']' : '') + '}}')[0]",
        version = crate::engine::ledger::VERSION,
        fields = quote_all(&merged),
        pod_fields = quote_all("l[1]"),
    )
}
