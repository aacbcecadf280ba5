use obmalloc::{Allocator, Config};
use refcount_object::{Heap, HeapConfig};

#[test]
fn hash_deep_tuple_small_stack() {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(|| {
            let mut h = Heap::new(Allocator::new(Config::default()), HeapConfig::default()).unwrap();
            let mut t = h.int_new(1000).unwrap();
            for _ in 0..20_000 {
                let o = h.tuple_new(&[t]).unwrap();
                h.decref(t);
                t = o;
            }
            let r = h.hash(t);
            println!("{r:?}");
            h.decref(t);
        })
        .unwrap()
        .join()
        .unwrap();
}
