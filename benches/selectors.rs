//! Selector matching: fqdnpath's `SelectorSet` against Cilium-style regex baselines, at 1k,
//! 10k and 100k selectors. Each measurement is the cost of finding every selector that matches
//! one name (the names cycle through a fixed mix of hits and misses).

mod common;

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fqdnpath::names::{FqdnSelector, SelectorSet};
use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

const SIZES: &[usize] = &[1_000, 10_000, 100_000];

fn build_set(selectors: &[(bool, String)]) -> SelectorSet {
    selectors
        .iter()
        .map(|(pattern, text)| {
            if *pattern {
                FqdnSelector::match_pattern(text).unwrap()
            } else {
                FqdnSelector::match_name(text).unwrap()
            }
        })
        .collect()
}

fn bench_match(c: &mut Criterion) {
    let mut group = c.benchmark_group("selectors");
    group.throughput(Throughput::Elements(1));
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    for &n in SIZES {
        let selectors = common::selectors(n);
        let names = common::names(n, 4096, 7);
        let set = build_set(&selectors);

        group.bench_with_input(BenchmarkId::new("selector_set", n), &n, |b, _| {
            let mut out = Vec::new();
            let mut i = 0;
            b.iter(|| {
                set.matches_into(&names[i & 4095], &mut out);
                i += 1;
                black_box(out.len())
            });
        });

        let regexes: Vec<String> = selectors.iter().map(common::cilium_regex).collect();

        // Cilium's name manager: one compiled regex per selector, each run on every new name.
        let compiled: Vec<Regex> = regexes.iter().map(|r| Regex::new(r).unwrap()).collect();
        group.bench_with_input(BenchmarkId::new("regex_per_selector", n), &n, |b, _| {
            let mut i = 0;
            b.iter(|| {
                let name = &names[i & 4095];
                i += 1;
                black_box(compiled.iter().filter(|re| re.is_match(name)).count())
            });
        });
        // Both sides answer the same question: check it on a sample before trusting the figures.
        for name in names.iter().step_by(64) {
            let expected: Vec<usize> = (0..n).filter(|&k| compiled[k].is_match(name)).collect();
            let got: Vec<usize> = set.matches(name).iter().map(|id| id.index()).collect();
            assert_eq!(got, expected, "{name}");
        }
        drop(compiled);

        // Cilium's DNS proxy: one alternation regex (it answers only "any match?").
        match RegexBuilder::new(&format!("(?:{})", regexes.join("|")))
            .size_limit(1 << 30)
            .dfa_size_limit(1 << 28)
            .build()
        {
            Ok(alternation) => {
                group.bench_with_input(BenchmarkId::new("regex_alternation", n), &n, |b, _| {
                    let mut i = 0;
                    b.iter(|| {
                        let name = &names[i & 4095];
                        i += 1;
                        black_box(alternation.is_match(name))
                    });
                });
            }
            Err(e) => eprintln!("selectors/regex_alternation/{n}: does not compile: {e}"),
        }

        // regex's RegexSet: every matching pattern, in one automaton.
        match RegexSetBuilder::new(&regexes)
            .size_limit(1 << 30)
            .dfa_size_limit(1 << 28)
            .build()
        {
            Ok(set) => bench_regex_set(&mut group, n, &set, &names),
            Err(e) => eprintln!("selectors/regex_set/{n}: does not compile: {e}"),
        }
    }
    group.finish();
}

fn bench_regex_set(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    n: usize,
    set: &RegexSet,
    names: &[String],
) {
    group.bench_with_input(BenchmarkId::new("regex_set", n), &n, |b, _| {
        let mut i = 0;
        b.iter(|| {
            let name = &names[i & 4095];
            i += 1;
            black_box(set.matches(name).iter().count())
        });
    });
}

criterion_group!(benches, bench_match);
criterion_main!(benches);
