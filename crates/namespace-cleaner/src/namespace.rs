//! Namespaces: creation, names bound and deleted, hidden names, user names.
//!
//! See the crate documentation for the layout of a namespace object and the
//! invariants every function here keeps.

use refcount_object::object::type_ids;
use refcount_object::{Heap, HostTypeSpec, Obj, ObjError, ObjResult};

/// The functions a notebook namespace starts with (hidden), as IPython's
/// `user_ns` has them. `In` (a list) and `Out` (a dict) come with them.
pub const NOTEBOOK_FUNCTIONS: [&str; 3] = ["get_ipython", "exit", "quit"];

/// The attributes of a namespace object.
const NAME_ATTR: &[u8] = b"__name__";
const NAMES_ATTR: &[u8] = b"__names__";
const HIDDEN_ATTR: &[u8] = b"__hidden__";

/// The namespaces of one runtime: the id of their type, registered in the
/// heap when the first one is made. Everything else lives in the objects.
#[derive(Debug, Default)]
pub struct Namespaces {
    type_id: Option<u32>,
}

/// One binding, borrowed from a namespace's `__names__` dict.
#[derive(Clone, Copy, Debug)]
pub struct Binding {
    pub key: Obj,
    pub value: Obj,
}

/// A `%reset_selective` pattern: a regex searched for anywhere in a name
/// (Python's `re.search`). An invalid one is an `InvalidArgument` error
/// carrying the regex crate's explanation.
pub fn name_pattern(pattern: &str) -> ObjResult<regex::Regex> {
    regex::Regex::new(pattern).map_err(|e| ObjError::InvalidArgument(format!("invalid regex {pattern:?}: {e}")))
}

impl Namespaces {
    pub fn new() -> Namespaces {
        Namespaces::default()
    }

    /// The namespace type's id, registering it on first use.
    fn type_id_or_register(&mut self, heap: &mut Heap) -> ObjResult<u32> {
        if let Some(id) = self.type_id {
            return Ok(id);
        }
        // Declared slots (CPython's `__slots__`): the three attributes live
        // inline in the object, and no other name can be set on it.
        let slots = [NAME_ATTR, NAMES_ATTR, HIDDEN_ATTR].map(|a| String::from_utf8_lossy(a).into_owned()).to_vec();
        let spec = HostTypeSpec { name: "namespace".into(), payload_size: 0, hooks: Default::default(), slots };
        let handle = heap.type_new(&spec)?;
        let id = heap.check_type(handle)?;
        self.type_id = Some(id);
        Ok(id)
    }

    /// A new, empty namespace named `name`. New reference.
    ///
    /// On failure nothing changes: the type registered by this call (the
    /// first namespace's) is taken back, since no instance of it survives.
    pub fn create(&mut self, heap: &mut Heap, name: &[u8]) -> ObjResult<Obj> {
        let registered_now = self.type_id.is_none();
        let type_id = self.type_id_or_register(heap)?;
        let made = heap.instance_new(type_id).and_then(|ns| match Self::fill(heap, ns, name) {
            Ok(()) => Ok(ns),
            Err(e) => {
                heap.decref(ns);
                Err(e)
            }
        });
        if made.is_err() && registered_now {
            heap.type_unregister_newest(type_id);
            self.type_id = None;
        }
        made
    }

    fn fill(heap: &mut Heap, ns: Obj, name: &[u8]) -> ObjResult<()> {
        let name = heap.str_new(name)?;
        let r = heap.setattr(ns, NAME_ATTR, name);
        heap.decref(name);
        r?;
        for attr in [NAMES_ATTR, HIDDEN_ATTR] {
            let d = heap.dict_new()?;
            let r = heap.setattr(ns, attr, d);
            heap.decref(d);
            r?;
        }
        Ok(())
    }

    /// Gives a namespace what a notebook has, all hidden: `In` (an empty
    /// list), `Out` (an empty dict) and the functions of
    /// [`NOTEBOOK_FUNCTIONS`], calling the host's `native` function (opaque
    /// here; the facade supplies one that returns None).
    pub fn add_notebook_names(&self, heap: &mut Heap, ns: Obj, native: usize) -> ObjResult<()> {
        let mut made: Vec<(&[u8], Obj)> = Vec::new();
        let result = (|| {
            made.push((b"In", heap.list_new()?));
            made.push((b"Out", heap.dict_new()?));
            for f in NOTEBOOK_FUNCTIONS {
                made.push((f.as_bytes(), heap.function_new(f.as_bytes(), native, 0)?));
            }
            for &(name, value) in &made {
                self.set(heap, ns, name, value)?;
                self.hide(heap, ns, name)?;
            }
            Ok(())
        })();
        for (_, o) in made {
            heap.decref(o);
        }
        result
    }

    /// Fails with a `Type` error unless `o` is a namespace.
    pub fn check(&self, heap: &Heap, o: Obj) -> ObjResult<()> {
        if self.is_namespace(heap, o) {
            return Ok(());
        }
        Err(ObjError::Type(format!("expected a namespace, got {}", heap.type_of(o).name())))
    }

    pub fn is_namespace(&self, heap: &Heap, o: Obj) -> bool {
        self.type_id.is_some_and(|id| heap.type_id(o) == id)
    }

    /// Every namespace of the runtime (borrowed), found among the tracked
    /// objects: a namespace is a container, tracked from its creation (the
    /// frozen ones are in the permanent generation).
    pub fn all(&self, heap: &Heap) -> Vec<Obj> {
        let Some(id) = self.type_id else { return Vec::new() };
        heap.gc
            .generations
            .iter()
            .chain(std::iter::once(&heap.gc.permanent))
            .flat_map(|list| list.objects())
            .filter(|&o| heap.type_id(o) == id)
            .collect()
    }

    /// The namespace's name, for messages and reports.
    pub fn name(&self, heap: &mut Heap, ns: Obj) -> String {
        match heap.getattr(ns, NAME_ATTR).and_then(|n| heap.str_bytes(n).map(|b| b.to_vec())) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(_) => "?".into(),
        }
    }

    /// The `__names__` dict (borrowed).
    pub fn names_dict(&self, heap: &mut Heap, ns: Obj) -> ObjResult<Obj> {
        self.check(heap, ns)?;
        heap.getattr(ns, NAMES_ATTR)
    }

    fn hidden_dict(&self, heap: &mut Heap, ns: Obj) -> ObjResult<Obj> {
        self.check(heap, ns)?;
        heap.getattr(ns, HIDDEN_ATTR)
    }

    /// `ns[name] = value` (the namespace takes its own reference). Rebinding
    /// a hidden name to another object makes it a user name again.
    pub fn set(&self, heap: &mut Heap, ns: Obj, name: &[u8], value: Obj) -> ObjResult<()> {
        let names = self.names_dict(heap, ns)?;
        let hidden = self.hidden_dict(heap, ns)?;
        let key = heap.str_intern(name)?;
        let r = heap.dict_set(names, key, value);
        if r.is_ok() {
            if let Ok(was) = heap.dict_get(hidden, key) {
                if was != value {
                    heap.dict_del(hidden, key)?;
                }
            }
        }
        heap.decref(key);
        r
    }

    /// `ns[name]` (borrowed); a `Key` error naming the namespace when unbound.
    pub fn get(&self, heap: &mut Heap, ns: Obj, name: &[u8]) -> ObjResult<Obj> {
        let names = self.names_dict(heap, ns)?;
        let key = heap.str_new(name)?;
        let r = heap.dict_get(names, key);
        heap.decref(key);
        r.map_err(|_| self.unbound(heap, ns, name))
    }

    #[cold]
    fn unbound(&self, heap: &mut Heap, ns: Obj, name: &[u8]) -> ObjError {
        ObjError::Key(format!(
            "name '{}' is not defined in namespace '{}'",
            String::from_utf8_lossy(name),
            self.name(heap, ns)
        ))
    }

    /// `del ns[name]` (a hidden name too; it stops being hidden).
    pub fn del(&self, heap: &mut Heap, ns: Obj, name: &[u8]) -> ObjResult<()> {
        self.get(heap, ns, name)?;
        let key = heap.str_new(name)?;
        let r = self.del_key(heap, ns, key);
        heap.decref(key);
        r
    }

    /// Deletes a bound key (borrowed str) from `__hidden__` and `__names__`.
    fn del_key(&self, heap: &mut Heap, ns: Obj, key: Obj) -> ObjResult<()> {
        let names = self.names_dict(heap, ns)?;
        let hidden = self.hidden_dict(heap, ns)?;
        // Hidden entry first: it holds a second reference to the value, so
        // the value dies (if it does) with the binding, not before.
        if heap.dict_get(hidden, key).is_ok() {
            heap.dict_del(hidden, key)?;
        }
        heap.dict_del(names, key)
    }

    /// Marks `name` as a system name (IPython's `user_ns_hidden`): never
    /// listed or reset while it stays bound to the object it has now.
    pub fn hide(&self, heap: &mut Heap, ns: Obj, name: &[u8]) -> ObjResult<()> {
        let value = self.get(heap, ns, name)?;
        let hidden = self.hidden_dict(heap, ns)?;
        let key = heap.str_intern(name)?;
        let r = heap.dict_set(hidden, key, value);
        heap.decref(key);
        r
    }

    /// Whether `key` (bound to `value`) is hidden in `ns`.
    fn is_hidden(&self, heap: &mut Heap, ns: Obj, key: Obj, value: Obj) -> ObjResult<bool> {
        let hidden = self.hidden_dict(heap, ns)?;
        Ok(heap.dict_get(hidden, key).is_ok_and(|was| was == value))
    }

    /// Every binding of `ns`, in insertion order (borrowed).
    pub fn bindings(&self, heap: &mut Heap, ns: Obj) -> ObjResult<Vec<Binding>> {
        let names = self.names_dict(heap, ns)?;
        let mut out = Vec::with_capacity(heap.dict_len(names)?);
        let mut pos = 0;
        while let Some((key, value)) = heap.dict_next(names, &mut pos)? {
            out.push(Binding { key, value });
        }
        Ok(out)
    }

    /// The user variables of `ns` (invariant 2 of the crate docs), sorted
    /// by name, borrowed; with a `type_filter`, only those whose type name
    /// is one of its words (separated by spaces or commas), as
    /// `%who_ls int list`.
    pub fn user_bindings(&self, heap: &mut Heap, ns: Obj, type_filter: Option<&str>) -> ObjResult<Vec<Binding>> {
        let wanted: Option<Vec<&str>> =
            type_filter.map(|f| f.split([' ', ',', '\t']).filter(|w| !w.is_empty()).collect());
        let mut out = Vec::new();
        for b in self.bindings(heap, ns)? {
            let name = heap.str_bytes(b.key)?;
            if name.first() == Some(&b'_') {
                continue;
            }
            if matches!(heap.type_id(b.value), type_ids::MODULE | type_ids::FUNCTION) {
                continue;
            }
            if let Some(types) = &wanted {
                let t = heap.type_of(b.value).name();
                if !types.contains(&t) {
                    continue;
                }
            }
            if self.is_hidden(heap, ns, b.key, b.value)? {
                continue;
            }
            out.push(b);
        }
        out.sort_by(|a, b| heap.str_bytes(a.key).unwrap_or(b"").cmp(heap.str_bytes(b.key).unwrap_or(b"")));
        Ok(out)
    }

    /// `%who_ls`: the names of [`Namespaces::user_bindings`] (borrowed strs).
    pub fn who(&self, heap: &mut Heap, ns: Obj, type_filter: Option<&str>) -> ObjResult<Vec<Obj>> {
        Ok(self.user_bindings(heap, ns, type_filter)?.into_iter().map(|b| b.key).collect())
    }

    /// `%xdel name`: deletes every name, in every namespace of the runtime,
    /// bound to the object `ns[name]` is bound to (hidden names too, as
    /// IPython's `del_var(by_name=False)`), and the object's entries in the
    /// output history of notebook namespaces (`Out`). Returns how many
    /// names were deleted.
    pub fn xdel(&self, heap: &mut Heap, ns: Obj, name: &[u8]) -> ObjResult<usize> {
        let target = self.get(heap, ns, name)?;
        // Our own reference while the bindings go: the address must not be
        // reused by an object made meanwhile (nothing is made, but a value
        // freed half-way must not be compared with later).
        heap.incref(target);
        let result = self.xdel_object(heap, target);
        heap.decref(target);
        result
    }

    fn xdel_object(&self, heap: &mut Heap, target: Obj) -> ObjResult<usize> {
        let mut removed = 0;
        for n in self.all(heap) {
            heap.incref(n);
            let r = self.unbind_object(heap, n, target);
            heap.decref(n);
            removed += r?;
        }
        Ok(removed)
    }

    /// Deletes the names of `ns` bound to `target`, and `target` from the
    /// values of its `Out` dict if it has one (a notebook's history).
    fn unbind_object(&self, heap: &mut Heap, ns: Obj, target: Obj) -> ObjResult<usize> {
        let keys: Vec<Obj> =
            self.bindings(heap, ns)?.into_iter().filter(|b| b.value == target).map(|b| heap.new_ref(b.key)).collect();
        let mut result = Ok(());
        for &key in &keys {
            if result.is_ok() {
                result = self.del_key(heap, ns, key);
            }
            heap.decref(key);
        }
        result?;
        let out_history = self.get(heap, ns, b"Out").ok().filter(|&o| heap.type_id(o) == type_ids::DICT);
        if let Some(out) = out_history {
            let mut stale = Vec::new();
            let mut pos = 0;
            while let Some((k, v)) = heap.dict_next(out, &mut pos)? {
                if v == target {
                    stale.push(heap.new_ref(k));
                }
            }
            for k in stale {
                let r = heap.dict_del(out, k);
                heap.decref(k);
                r?;
            }
        }
        Ok(keys.len())
    }

    /// `%reset -s` (no `pattern`) or `%reset_selective pattern`: deletes the
    /// user variables of `ns`, or those whose name the regex finds a match
    /// in (`re.search` semantics: anywhere in the name). Returns how many
    /// names were deleted. What the deletions free is freed at once by
    /// reference counting; cycles wait for the collection the facade runs.
    pub fn remove_user_names(&self, heap: &mut Heap, ns: Obj, pattern: Option<&regex::Regex>) -> ObjResult<usize> {
        let mut doomed: Vec<Obj> = Vec::new();
        for b in self.user_bindings(heap, ns, None)? {
            let name = std::str::from_utf8(heap.str_bytes(b.key)?).unwrap_or("");
            if pattern.is_none_or(|re| re.is_match(name)) {
                doomed.push(b.key);
            }
        }
        if doomed.is_empty() {
            return Ok(0);
        }
        // Everything that allocates comes first, so that an out-of-memory
        // error deletes nothing: the new `__names__` dict with the bindings
        // left. Then the changes, none of which allocates.
        let fresh = self.compacted_names(heap, ns, &doomed)?;
        let hidden = self.hidden_dict(heap, ns)?;
        // The hidden entries of the doomed names (a name hidden with another
        // object than the one bound now) go with them.
        for &key in &doomed {
            if heap.dict_get(hidden, key).is_ok() {
                heap.dict_del(hidden, key)?;
            }
        }
        // Replacing the old dict drops it, and with it the references of
        // the doomed bindings (unless the host holds the old dict).
        let r = heap.setattr(ns, NAMES_ATTR, fresh);
        heap.decref(fresh);
        r?;
        Ok(doomed.len())
    }

    /// A new `__names__` dict with the bindings of `ns` but `doomed`, in
    /// their order. A dict never shrinks when keys are deleted (CPython's
    /// neither), so after a reset of many names the old table would stay
    /// sized for all of them; the new one is the size the remaining names
    /// alone would have made, so the allocator's bytes in use come back to
    /// what they were before those names were bound. New reference.
    fn compacted_names(&self, heap: &mut Heap, ns: Obj, doomed: &[Obj]) -> ObjResult<Obj> {
        let doomed: std::collections::HashSet<*mut u8> = doomed.iter().map(|k| k.as_ptr().cast()).collect();
        let old = self.names_dict(heap, ns)?;
        let fresh = heap.dict_new()?;
        let mut pos = 0;
        let mut result = Ok(());
        while let Some((key, value)) = heap.dict_next(old, &mut pos)? {
            if doomed.contains(&key.as_ptr().cast()) {
                continue;
            }
            result = heap.dict_set(fresh, key, value);
            if result.is_err() {
                break;
            }
        }
        match result {
            Ok(()) => Ok(fresh),
            Err(e) => {
                heap.decref(fresh);
                Err(e)
            }
        }
    }
}
