//! The permission catalog loader (`Catalog::from_toml`), which reads operator-supplied TOML.
//!
//! Asserts: a refused catalog reports at least one problem, each on a line of the file (or 0);
//! an accepted one has unique, valid scope-token permission names, each found by
//! `Catalog::permission`; every program's permissions and prerequisites exist; each permission's
//! derived `programs` list is exactly the programs granting it; it serializes to JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scopegate_core::catalog::is_scope_token;
use scopegate_core::Catalog;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let last_line = text.split('\n').count();
    let catalog = match Catalog::from_toml(text) {
        Ok(c) => c,
        Err(e) => {
            assert!(!e.problems.is_empty(), "refused with no problem");
            for p in &e.problems {
                assert!(
                    p.line <= last_line,
                    "problem on line {} of {last_line}",
                    p.line
                );
            }
            let _ = e.to_string();
            return;
        }
    };
    let mut names = std::collections::HashSet::new();
    for p in &catalog.permissions {
        assert!(is_scope_token(&p.name), "{:?}", p.name);
        assert!(names.insert(p.name.as_str()), "duplicate {:?}", p.name);
        assert_eq!(catalog.permission(&p.name), Some(p));
        for id in &p.programs {
            let prog = catalog.program(id).expect("granting program exists");
            assert!(prog.permissions.contains(&p.name));
        }
        if let Some(d) = &p.deprecated {
            for r in &d.replacements {
                assert!(catalog.permission(r).is_some(), "replacement {r:?} missing");
            }
        }
    }
    for prog in &catalog.programs {
        assert_eq!(catalog.program(&prog.id).map(|p| &p.id), Some(&prog.id));
        for name in &prog.permissions {
            let perm = catalog.permission(name).expect("granted permission exists");
            assert!(
                perm.programs.contains(&prog.id),
                "{name:?} does not list {:?}",
                prog.id
            );
        }
        for pre in &prog.prerequisites {
            assert!(
                catalog.program(pre).is_some(),
                "prerequisite {pre:?} missing"
            );
        }
    }
    serde_json::to_string(&catalog).expect("a catalog serializes");
});
