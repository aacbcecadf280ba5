//! Who keeps an object alive: the chains of references from a root to it,
//! like objgraph's `find_backref_chain`, as text.
//!
//! The question behind it: "I deleted the variable and the memory did not
//! come back". The answer is every shortest chain of references that ends
//! at the object and starts at a **root**:
//! - a binding in a namespace (`namespace 'main': keep[0]['x']`);
//! - an object some references to which come from no tracked object: the
//!   host's own references (a `pymem_object *` it did not decref), or an
//!   untracked holder. Those are found by counting, as the collector does:
//!   an object's count minus the references the tracked objects hold to it.
//!
//! Phases:
//! 1. `reverse_edges`: one pass over every tracked container (generations
//!    and the permanent one), recording for each referenced container —
//!    and for the object itself, which may be an atom — who refers to it.
//!    Atoms other than the object cannot be links of a chain, so a list of
//!    ten million ints costs a visit of each but no memory.
//! 2. `search`: breadth-first from the object up the reverse edges, so each
//!    chain found is a shortest one; a namespace's dict ends a chain (the
//!    binding is the root), and so does an object with outside references.
//! 3. `describe`: each chain as a path expression, from its root down.

use std::collections::VecDeque;
use std::fmt::Write;

use gc_generations::{HostTraverse, Traverser};
use hashbrown::{HashMap, HashSet};
use refcount_object::object::type_ids;
use refcount_object::{Heap, Obj, ObjResult};

use crate::namespace::Namespaces;

/// Chains shown at most (shortest first).
const MAX_CHAINS: usize = 10;

/// Where a chain starts.
enum Root {
    /// `ns[key]` is `first`.
    Binding { ns: Obj, key: Obj, first: Obj },
    /// `first` has `count` references from no tracked object.
    Outside { first: Obj, count: usize },
}

/// What a namespace's dict is to it.
#[derive(Clone, Copy)]
struct DictRole {
    ns: Obj,
    /// The `__hidden__` dict: its references duplicate bindings, so it is
    /// counted but never shown.
    hidden: bool,
}

/// One chain of references: where it starts, then each step down to the
/// object (`[3]`, `['key']`, `.__dict__`...). A chain of references held
/// from outside by the object itself has no steps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    pub root: String,
    pub steps: Vec<String>,
}

impl Chain {
    /// The chain as one path expression, as `why_alive` prints it.
    pub fn to_text(&self) -> String {
        let mut text = self.root.clone();
        for step in &self.steps {
            text.push_str(step);
        }
        text
    }
}

/// The answer of `why_alive` as data, for reports that draw it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WhyAlive {
    /// `'name' in namespace 'ns' (type at 0x..., reference count n)`.
    pub label: String,
    /// The variable's name.
    pub name: String,
    /// Immortal objects have no chains to show.
    pub immortal: bool,
    /// The first [`MAX_CHAINS`] chains, shortest first.
    pub chains: Vec<Chain>,
    /// How many chains there are in all.
    pub total: usize,
}

impl WhyAlive {
    /// The text of `why_alive` (see the module docs).
    pub fn to_text(&self) -> String {
        if self.immortal {
            return format!("{}\nis immortal: it is never freed, whatever refers to it.\n", self.label);
        }
        let mut out = format!(
            "{}\nis kept alive by {}:\n",
            self.label,
            plural(self.total, "chain of references", "chains of references")
        );
        for chain in &self.chains {
            let _ = writeln!(out, "  {}", chain.to_text());
        }
        if self.total > self.chains.len() {
            let _ = writeln!(out, "  ... and {} more", self.total - self.chains.len());
        }
        if self.total == 0 {
            out.push_str(
                "  none from a namespace or the host: only reference cycles hold it, \
                 and the next full collection frees it\n",
            );
        }
        out
    }
}

impl Namespaces {
    /// The referrer chains keeping `ns[name]` alive, as text (see the module
    /// docs). `host` reports the references host objects keep in their
    /// payloads (their `traverse`); it may not call back into the runtime.
    pub fn why_alive(&self, heap: &mut Heap, ns: Obj, name: &[u8], host: HostTraverse) -> ObjResult<String> {
        Ok(self.why_alive_chains(heap, ns, name, host)?.to_text())
    }

    /// The same answer as data.
    pub fn why_alive_chains(&self, heap: &mut Heap, ns: Obj, name: &[u8], host: HostTraverse) -> ObjResult<WhyAlive> {
        let target = self.get(heap, ns, name)?;
        let mut roles: HashMap<Obj, DictRole> = HashMap::new();
        let mut ns_names: HashMap<Obj, String> = HashMap::new();
        for n in self.all(heap) {
            let names = self.names_dict(heap, n)?;
            roles.insert(names, DictRole { ns: n, hidden: false });
            if let Ok(hidden) = heap.getattr(n, b"__hidden__") {
                roles.insert(hidden, DictRole { ns: n, hidden: true });
            }
            ns_names.insert(n, self.name(heap, n));
        }
        let heap: &Heap = heap;
        let label = format!(
            "'{}' in namespace '{}' ({} at {:#x}, reference count {})",
            String::from_utf8_lossy(name),
            ns_names.get(&ns).map_or("?", String::as_str),
            heap.type_of(target).name(),
            target.as_ptr() as usize,
            heap.refcount(target)
        );
        let mut answer = WhyAlive { label, name: String::from_utf8_lossy(name).into_owned(), ..WhyAlive::default() };
        if heap.is_immortal(target) {
            answer.immortal = true;
            return Ok(answer);
        }
        let parents = reverse_edges(heap, target, host);
        let (roots, hops) = search(heap, target, &parents, &roles);
        answer.total = roots.len();
        answer.chains =
            roots.iter().take(MAX_CHAINS).map(|root| describe(heap, root, &hops, target, &ns_names)).collect();
        Ok(answer)
    }
}

/// `1 reference`, `2 references`; `one` and `many` are the two forms.
fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Phase 1: child → the tracked containers referring to it (a container
/// referring twice appears twice), for containers and the target.
fn reverse_edges(heap: &Heap, target: Obj, host: HostTraverse) -> HashMap<Obj, Vec<Obj>> {
    let mut parents: HashMap<Obj, Vec<Obj>> = HashMap::new();
    let mut traverser = Traverser::new(host);
    let lists = heap.gc.generations.iter().chain(std::iter::once(&heap.gc.permanent));
    for list in lists {
        for p in list.objects() {
            traverser.traverse_all(heap, p, &mut |c: Obj| {
                if c == target || heap.is_gc(c) {
                    parents.entry(c).or_default().push(p);
                }
            });
        }
    }
    parents
}

/// Phase 2: breadth-first up the reverse edges. Returns the roots in the
/// order found (shortest chains first) and, for each object on a chain,
/// the next object towards the target.
fn search(
    heap: &Heap,
    target: Obj,
    parents: &HashMap<Obj, Vec<Obj>>,
    roles: &HashMap<Obj, DictRole>,
) -> (Vec<Root>, HashMap<Obj, Obj>) {
    let mut roots = Vec::new();
    let mut hops: HashMap<Obj, Obj> = HashMap::new();
    let mut visited: HashSet<Obj> = HashSet::new();
    visited.insert(target);
    let mut queue = VecDeque::from([target]);
    let none = Vec::new();
    while let Some(x) = queue.pop_front() {
        let ps = parents.get(&x).unwrap_or(&none);
        let outside = heap.refcount(x).saturating_sub(ps.len());
        if outside > 0 {
            roots.push(Root::Outside { first: x, count: outside });
        }
        let mut done: HashSet<Obj> = HashSet::new();
        for &p in ps {
            if !done.insert(p) {
                continue;
            }
            if let Some(role) = roles.get(&p) {
                if !role.hidden {
                    let mut pos = 0;
                    while let Ok(Some((key, value))) = heap.dict_next(p, &mut pos) {
                        if value == x {
                            roots.push(Root::Binding { ns: role.ns, key, first: x });
                        }
                    }
                }
                continue;
            }
            if visited.insert(p) {
                hops.insert(p, x);
                queue.push_back(p);
            }
        }
    }
    (roots, hops)
}

/// Phase 3: one chain, from its root down.
fn describe(heap: &Heap, root: &Root, hops: &HashMap<Obj, Obj>, target: Obj, ns_names: &HashMap<Obj, String>) -> Chain {
    let (text, first) = match *root {
        Root::Binding { ns, key, first } => (
            format!(
                "namespace '{}': {}",
                ns_names.get(&ns).map_or("?", String::as_str),
                String::from_utf8_lossy(heap.str_bytes(key).unwrap_or(b"?"))
            ),
            first,
        ),
        Root::Outside { first, count } if first == target => {
            let root = format!(
                "{} from outside any object (the host's, or an untracked holder's)",
                plural(count, "reference", "references")
            );
            return Chain { root, steps: Vec::new() };
        }
        Root::Outside { first, count } => (
            format!(
                "<{} at {:#x}, held by {} from outside any object>",
                heap.type_of(first).name(),
                first.as_ptr() as usize,
                plural(count, "reference", "references")
            ),
            first,
        ),
    };
    let mut chain = Chain { root: text, steps: Vec::new() };
    let mut at = first;
    while at != target {
        let Some(&next) = hops.get(&at) else { break };
        chain.steps.push(edge(heap, at, next));
        at = next;
    }
    chain
}

/// How `parent` refers to `child`, as a path step: `[3]`, `['key']`,
/// `.<key>` (the child is a key of a dict), `.__dict__`, `.<attribute>`.
fn edge(heap: &Heap, parent: Obj, child: Obj) -> String {
    match heap.type_id(parent) {
        type_ids::LIST | type_ids::TUPLE => {
            let mut at = None;
            let mut i = 0;
            heap.traverse_builtin(parent, &mut |c| {
                if c == child && at.is_none() {
                    at = Some(i);
                }
                i += 1;
            });
            at.map_or_else(|| "[?]".into(), |i| format!("[{i}]"))
        }
        type_ids::DICT => {
            let mut pos = 0;
            let mut as_key = false;
            while let Ok(Some((k, v))) = heap.dict_next(parent, &mut pos) {
                if v == child {
                    let key = heap.repr(k).unwrap_or_else(|_| "?".into());
                    return format!("[{}]", crate::table::elide(&key));
                }
                as_key |= k == child;
            }
            if as_key {
                ".<key>".into()
            } else {
                "[?]".into()
            }
        }
        type_ids::MODULE | type_ids::FUNCTION => {
            if heap.object_name(parent) == Some(child) {
                ".__name__".into()
            } else {
                ".__dict__".into()
            }
        }
        _ => {
            let mut attribute = false;
            heap.traverse_builtin(parent, &mut |c| attribute |= c == child);
            if attribute {
                ".<attribute>".into()
            } else {
                ".<payload>".into()
            }
        }
    }
}
