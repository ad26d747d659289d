//! Data loading and batching: the examples' data load with their declarations; each data
//! diagnostic names its file, line (or row) and column; NPY files written here round-trip;
//! no bytes panic the loader; batches are reproducible from the seed and stay in bounds.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use glassbox::data::batch::{self, Window};
use glassbox::data::{Dataset, LoadOptions, Trajectory, load, load_model, load_with};
use glassbox::diag::Diag;
use glassbox::sema::{DataFormat, DataLayout, DataSource};
use glassbox::source::{DiskLoader, MemoryLoader, SourceFile, Span};
use ndarray::{Array1, Array2, array};
use proptest::prelude::*;

// ---------- helpers ----------

fn source(path: &str, format: DataFormat, layout: DataLayout) -> DataSource {
    DataSource {
        name: "obs".into(),
        path: PathBuf::from(path),
        format,
        layout,
        span: Span::new(5, 8),
    }
}

fn traj_layout(time: &str, columns: &[&str], group: Option<&str>) -> DataLayout {
    DataLayout::Trajectory {
        time: time.into(),
        columns: columns.iter().map(|c| c.to_string()).collect(),
        group: group.map(str::to_string),
    }
}

fn mem(path: &str, bytes: &[u8]) -> MemoryLoader {
    MemoryLoader(HashMap::from([(PathBuf::from(path), bytes.to_vec())]))
}

fn load_bytes(bytes: &[u8], format: DataFormat, layout: DataLayout) -> Result<Dataset, Diag> {
    load(&source("d/f", format, layout), &mem("d/f", bytes))
}

fn traj_csv(text: &str) -> Result<Dataset, Diag> {
    load_bytes(
        text.as_bytes(),
        DataFormat::Csv,
        traj_layout("t", &["x", "y"], None),
    )
}

fn table_csv(text: &str, classes: Option<usize>) -> Result<Dataset, Diag> {
    let s = source(
        "d/f",
        DataFormat::Csv,
        DataLayout::Table {
            features: (0, 2),
            label: Some(2),
        },
    );
    load_with(
        &s,
        &mem("d/f", text.as_bytes()),
        LoadOptions {
            model_file: None,
            classes,
            label_optional: false,
        },
    )
}

/// The diagnostic of a failed load, checked for its code and every fragment of its message.
fn fails(r: Result<Dataset, Diag>, code: &str, fragments: &[&str]) -> Diag {
    let d = match r {
        Ok(d) => panic!("expected {code}, loaded {d:?}"),
        Err(d) => d,
    };
    assert_eq!(d.code, code, "{}", d.message);
    for f in fragments {
        assert!(d.message.contains(f), "`{f}` not in: {}", d.message);
    }
    assert!(d.help.is_some(), "{code} has no help");
    assert_eq!(
        d.span().map(|s| s.range()),
        Some(5..8),
        "the declaration's span"
    );
    d
}

fn trajectories(d: &Dataset) -> (&Option<Array1<f64>>, &[Trajectory]) {
    match d {
        Dataset::Trajectories { times, paths } => (times, paths),
        Dataset::Table { .. } => panic!("expected trajectories"),
    }
}

fn table(d: &Dataset) -> (&Array2<f64>, &Option<Vec<usize>>) {
    match d {
        Dataset::Table { x, labels } => (x, labels),
        Dataset::Trajectories { .. } => panic!("expected a table"),
    }
}

// ---------- the examples ----------

fn example_data(name: &str) -> Vec<Dataset> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("example model");
    let file = SourceFile::new(path.display().to_string(), text);
    let checked = glassbox::check_source(&file, &DiskLoader);
    let model = checked.model.unwrap_or_else(|| {
        let codes: Vec<_> = checked.diags.iter().map(|d| &d.message).collect();
        panic!("{name} does not check: {codes:?}")
    });
    match load_model(&model, Some(&file), &DiskLoader) {
        Ok(d) => d,
        Err(e) => panic!("{name}: {} ({})", e.message, e.code),
    }
}

#[test]
fn every_example_data_file_loads() {
    let single = [
        ("spiral.gbx", 1000, 2, 0.0, 25.0),
        ("lotka_volterra_ude.gbx", 101, 2, 0.0, 10.0),
        ("lorenz.gbx", 501, 3, 0.0, 100.0),
        ("van_der_pol.gbx", 401, 2, 0.0, 40.0),
    ];
    for (name, rows, cols, t0, t1) in single {
        let data = example_data(name);
        assert_eq!(data.len(), 1, "{name}");
        let (times, paths) = trajectories(&data[0]);
        assert_eq!(paths.len(), 1, "{name}");
        let p = &paths[0];
        assert_eq!((p.t.len(), p.y.dim()), (rows, (rows, cols)), "{name}");
        assert_eq!(p.t[0], t0, "{name}");
        assert!((p.t[rows - 1] - t1).abs() < 1e-9, "{name}");
        assert_eq!(
            times.as_ref(),
            Some(&p.t),
            "one path: its times are the grid"
        );
    }
    // spiral: y0 = [2, 0] exactly (the generator's initial value, no noise).
    let spiral = example_data("spiral.gbx");
    assert_eq!(
        trajectories(&spiral[0]).1[0].y.row(0).to_vec(),
        vec![2.0, 0.0]
    );

    let sde = example_data("spiral_sde.gbx");
    let (times, paths) = trajectories(&sde[0]);
    assert_eq!(paths.len(), 100);
    assert!(paths.iter().all(|p| p.y.dim() == (20, 2)));
    assert_eq!(paths[0].id.as_deref(), Some("0"));
    assert_eq!(paths[99].id.as_deref(), Some("99"));
    let grid = times.as_ref().expect("all paths share the 20 times");
    assert_eq!(grid.len(), 20);
    assert!((grid[19] - 1.0).abs() < 1e-9);

    let digits = example_data("digits.gbx");
    let (x, labels) = table(&digits[0]);
    assert_eq!(x.dim(), (1797, 64));
    let labels = labels.as_ref().expect("labels");
    assert_eq!(labels.len(), 1797);
    assert!(labels.iter().all(|&l| l < 10));
    for c in 0..10 {
        assert!(labels.contains(&c), "class {c} present");
    }
    assert!(
        x.iter()
            .all(|&v| (0.0..=16.0).contains(&v) && v.fract() == 0.0)
    );
}

// ---------- diagnostics ----------

#[test]
fn missing_column_with_did_you_mean() {
    let d = fails(
        load_bytes(
            b"t,x,yy\n0,1,2\n1,2,3\n",
            DataFormat::Csv,
            traj_layout("t", &["x", "y"], None),
        ),
        "glassbox::data_missing_column",
        &["d/f", "no column `y`"],
    );
    assert!(d.help.unwrap().contains("`yy`"));
    fails(
        table_csv("1,2\n3,4\n", None),
        "glassbox::data_missing_column",
        &["label column 2", "2 columns"],
    );
}

#[test]
fn non_numeric_cell_names_line_and_column() {
    fails(
        traj_csv("t,x,y\n0,1,2\n\n1,abc,3\n"),
        "glassbox::data_not_a_number",
        &["d/f, line 4", "column `x` (index 1)", "`abc`"],
    );
    fails(
        traj_csv("t,x,y\n0,1,2\n1,,3\n"),
        "glassbox::data_not_a_number",
        &["line 3", "column `x`", "empty"],
    );
    fails(
        table_csv("1,2,0\n1,x,0\n", None),
        "glassbox::data_not_a_number",
        &["line 2", "column 1:"],
    );
    // Columns the model does not use may hold anything.
    let d = load_bytes(
        b"t,note,x,y\n0,start,1,2\n1,,2,3\n",
        DataFormat::Csv,
        traj_layout("t", &["x", "y"], None),
    )
    .unwrap();
    assert_eq!(trajectories(&d).1[0].y, array![[1.0, 2.0], [2.0, 3.0]]);
}

#[test]
fn nan_and_inf_cells() {
    fails(
        traj_csv("t,x,y\n0,1,2\n1,2,NaN\n"),
        "glassbox::data_not_finite",
        &["line 3", "column `y` (index 2)", "NaN"],
    );
    fails(
        traj_csv("t,x,y\n0,1,2\ninf,2,3\n"),
        "glassbox::data_not_finite",
        &["line 3", "column `t` (index 0)", "inf"],
    );
}

#[test]
fn unsorted_and_duplicate_times() {
    fails(
        traj_csv("t,x,y\n0,1,2\n2,1,2\n1,1,2\n"),
        "glassbox::data_unsorted_times",
        &[
            "line 4",
            "column `t`",
            "out of order",
            "1 follows 2",
            "line 3",
        ],
    );
    fails(
        traj_csv("t,x,y\n0,1,2\n1,1,2\n1,1,2\n"),
        "glassbox::data_unsorted_times",
        &["line 4", "duplicate"],
    );
    // Within a path: the same times in different paths are fine, a repeat inside one is not.
    let layout = || traj_layout("t", &["x"], Some("p"));
    let ok = load_bytes(
        b"p,t,x\na,0,1\na,1,2\nb,0,3\nb,1,4\n",
        DataFormat::Csv,
        layout(),
    )
    .unwrap();
    let (times, paths) = trajectories(&ok);
    assert_eq!(paths.len(), 2);
    assert_eq!(paths[1].id.as_deref(), Some("b"));
    assert_eq!(paths[1].y, array![[3.0], [4.0]]);
    assert_eq!(times.as_ref(), Some(&array![0.0, 1.0]));
    fails(
        load_bytes(
            b"p,t,x\na,0,1\nb,0,3\na,1,2\nb,0,4\n",
            DataFormat::Csv,
            layout(),
        ),
        "glassbox::data_unsorted_times",
        &["line 5", "path `b`", "duplicate"],
    );
}

#[test]
fn paths_with_different_times_have_no_common_grid() {
    let d = load_bytes(
        b"p,t,x\n0,0,1\n0,1,2\n1,0,3\n1,2,4\n",
        DataFormat::Csv,
        traj_layout("t", &["x"], Some("p")),
    )
    .unwrap();
    assert_eq!(trajectories(&d).0, &None);
}

#[test]
fn too_few_rows() {
    fails(
        traj_csv("t,x,y\n0,1,2\n"),
        "glassbox::data_too_few_rows",
        &["1 observation,", "at least 2"],
    );
    fails(
        load_bytes(
            b"p,t,x\n0,0,1\n0,1,2\n7,0,3\n",
            DataFormat::Csv,
            traj_layout("t", &["x"], Some("p")),
        ),
        "glassbox::data_too_few_rows",
        &["path `7`"],
    );
}

#[test]
fn ragged_rows_and_empty_files() {
    fails(
        traj_csv("t,x,y\n0,1,2\n1,2\n"),
        "glassbox::data_ragged_row",
        &["line 3", "2 cells", "the header has 3"],
    );
    fails(
        table_csv("1,2,0\n\n1,2,0,5\n", None),
        "glassbox::data_ragged_row",
        &["line 3", "4 cells", "line 1 has 3"],
    );
    fails(traj_csv(""), "glassbox::data_empty", &["d/f", "empty"]);
    fails(traj_csv("\n  \n"), "glassbox::data_empty", &["empty"]);
    fails(
        traj_csv("t,x,y\n"),
        "glassbox::data_empty",
        &["no data rows"],
    );
    fails(table_csv("", None), "glassbox::data_empty", &["empty"]);
    fails(
        load_bytes(
            b"t,x\n\xff\xfe\n",
            DataFormat::Csv,
            traj_layout("t", &["x"], None),
        ),
        "glassbox::data_not_utf8",
        &["line 2"],
    );
}

#[test]
fn labels() {
    let d = table_csv("1,2,0\n3,4,9\r\n", Some(10)).unwrap();
    let (x, labels) = table(&d);
    assert_eq!(x, &array![[1.0, 2.0], [3.0, 4.0]]);
    assert_eq!(labels.as_deref(), Some(&[0, 9][..]));
    fails(
        table_csv("1,2,0\n3,4,10\n", Some(10)),
        "glassbox::data_label_out_of_range",
        &["line 2", "column 2", "label 10", "0..10"],
    );
    fails(
        table_csv("1,2,-1\n", None),
        "glassbox::data_label_out_of_range",
        &["line 1", "-1"],
    );
    fails(
        table_csv("1,2,0\n3,4,2.5\n", Some(10)),
        "glassbox::data_label_not_integer",
        &["line 2", "column 2", "2.5"],
    );
}

#[test]
fn missing_file_is_a_diagnostic() {
    let s = source(
        "d/gone.csv",
        DataFormat::Csv,
        traj_layout("t", &["x"], None),
    );
    let d = load(&s, &MemoryLoader::default()).unwrap_err();
    assert_eq!(d.code, "glassbox::data_not_found");
    assert!(d.message.contains("d/gone.csv"));
}

/// Through the checker: the label points at the `data` declaration in the model file, and the
/// diagnostic carries that file so it renders with the source line.
#[test]
fn diagnostics_point_into_the_model_file() {
    let model = "state x = 1.0\nparam k = 1.0 learn\ndx/dt = -k * x\n\
                 data obs = csv(\"obs.csv\", time = \"t\", columns = [\"x\"])\n\
                 minimize mse(x, obs)\ntrain adam(lr = 1e-2), iterations = 10\n";
    let loader = mem("m/obs.csv", b"t,x\n0,1\n0.5,oops\n");
    let file = SourceFile::new("m/model.gbx", model);
    let checked = glassbox::check_source(&file, &loader);
    let m = checked.model.expect("checks: the header is right");
    let d = load_model(&m, Some(&file), &loader).unwrap_err();
    assert_eq!(d.code, "glassbox::data_not_a_number");
    assert!(
        d.message
            .contains("m/obs.csv, line 3, column `x` (index 1)"),
        "{}",
        d.message
    );
    let span = d.span().expect("a label").range();
    assert_eq!(&model[span], "obs");
    assert!(d.file.is_some());
    let json = serde_json::to_string(&d.to_json()).unwrap();
    assert!(json.contains("\"line\":4"), "{json}");
}

// ---------- NPY ----------

/// A `.npy` file: version 1 (or 2) header padded to a multiple of 64 bytes, then `data`.
fn npy(descr: &str, fortran: bool, shape: &[usize], data: &[u8], version: u8) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let shape = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let order = if fortran { "True" } else { "False" };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape}, }}");
    let pre = if version == 1 { 10 } else { 12 };
    while (pre + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY".to_vec();
    out.extend([version, 0]);
    if version == 1 {
        out.extend((header.len() as u16).to_le_bytes());
    } else {
        out.extend((header.len() as u32).to_le_bytes());
    }
    out.extend(header.as_bytes());
    out.extend(data);
    out
}

fn f8(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn npy_table(
    bytes: &[u8],
    features: (usize, usize),
    label: Option<usize>,
) -> Result<Dataset, Diag> {
    load_bytes(
        bytes,
        DataFormat::Npy,
        DataLayout::Table { features, label },
    )
}

#[test]
fn npy_round_trips() {
    let x = array![[1.5, -2.0, 3.25], [4.0, 5.0, 6.0]];
    let flat: Vec<f64> = x.iter().copied().collect();
    for version in [1, 2] {
        let d = npy_table(
            &npy("<f8", false, &[2, 3], &f8(&flat), version),
            (0, 3),
            None,
        )
        .unwrap();
        assert_eq!(table(&d).0, &x);
    }
    // Fortran order: the same matrix stored column by column.
    let col_major: Vec<f64> = x.t().iter().copied().collect();
    let d = npy_table(&npy("<f8", true, &[2, 3], &f8(&col_major), 1), (0, 3), None).unwrap();
    assert_eq!(table(&d).0, &x);
    // float32, and features + an integer label from an int64 array.
    let f4: Vec<u8> = [0.5f32, 1.0, 2.0, 4.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let d = npy_table(&npy("<f4", false, &[2, 2], &f4, 1), (0, 2), None).unwrap();
    assert_eq!(table(&d).0, &array![[0.5, 1.0], [2.0, 4.0]]);
    let i8s: Vec<u8> = [7i64, -3, 1, 9, 0, 0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let d = npy_table(&npy("<i8", false, &[2, 3], &i8s, 1), (0, 2), Some(2)).unwrap();
    assert_eq!(table(&d).0, &array![[7.0, -3.0], [9.0, 0.0]]);
    assert_eq!(table(&d).1.as_deref(), Some(&[1, 0][..]));
    // 1-D int32: one column.
    let i4: Vec<u8> = [3i32, -4, 5].iter().flat_map(|v| v.to_le_bytes()).collect();
    let d = npy_table(&npy("<i4", false, &[3], &i4, 1), (0, 1), None).unwrap();
    assert_eq!(table(&d).0, &array![[3.0], [-4.0], [5.0]]);
}

#[test]
fn npy_trajectories_are_positional() {
    // (path, t, u1, u2), two paths of two times.
    let rows = [
        0.0, 0.0, 1.0, 2.0, 0.0, 0.5, 3.0, 4.0, 1.0, 0.0, 5.0, 6.0, 1.0, 0.5, 7.0, 8.0,
    ];
    let bytes = npy("<f8", false, &[4, 4], &f8(&rows), 1);
    let layout = || traj_layout("t", &["u1", "u2"], Some("path"));
    let d = load_bytes(&bytes, DataFormat::Npy, layout()).unwrap();
    let (times, paths) = trajectories(&d);
    assert_eq!(paths.len(), 2);
    assert_eq!(paths[1].y, array![[5.0, 6.0], [7.0, 8.0]]);
    assert_eq!(times.as_ref(), Some(&array![0.0, 0.5]));
    fails(
        load_bytes(&bytes, DataFormat::Npy, traj_layout("t", &["u1"], None)),
        "glassbox::data_npy_format",
        &["4 columns", "needs 2 (t, u1)"],
    );
    // A NaN in an array names its 1-based row and the implied column name.
    let mut bad = rows;
    bad[6] = f64::NAN;
    fails(
        load_bytes(
            &npy("<f8", false, &[4, 4], &f8(&bad), 1),
            DataFormat::Npy,
            layout(),
        ),
        "glassbox::data_not_finite",
        &["row 2", "column `u1` (index 2)"],
    );
}

#[test]
fn malformed_npy() {
    let good = npy("<f8", false, &[2, 2], &f8(&[1.0, 2.0, 3.0, 4.0]), 1);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"hello".to_vec(), "magic"),
        (good[..9].to_vec(), "ends inside"),
        (good[..40].to_vec(), "ends inside the header"),
        (
            good[..good.len() - 1].to_vec(),
            "needs 32 data bytes, the file has 31",
        ),
        (npy(">f8", false, &[1], &f8(&[1.0]), 1), "big-endian"),
        (
            npy("<c16", false, &[1], &[0; 16], 1),
            "unsupported element type",
        ),
        (
            npy("<f8", false, &[1, 1, 1], &f8(&[1.0]), 1),
            "3-dimensional",
        ),
        (npy("<f8", false, &[], &f8(&[1.0]), 1), "0-dimensional"),
        (npy("<f8", false, &[usize::MAX, 4], &[], 1), "too large"),
    ];
    for (bytes, why) in cases {
        fails(
            npy_table(&bytes, (0, 1), None),
            "glassbox::data_npy_format",
            &[why],
        );
    }
    fails(
        npy_table(&npy("<f8", false, &[0, 2], &[], 1), (0, 1), None),
        "glassbox::data_empty",
        &["empty array"],
    );
    fails(
        npy_table(&good, (0, 3), None),
        "glassbox::data_missing_column",
        &["column 2"],
    );
}

// ---------- never a panic ----------

fn layouts() -> Vec<(DataFormat, DataLayout)> {
    let mut v = Vec::new();
    for f in [DataFormat::Csv, DataFormat::Npy] {
        v.push((f, traj_layout("t", &["x", "y"], None)));
        v.push((f, traj_layout("t", &["x"], Some("p"))));
        v.push((
            f,
            DataLayout::Table {
                features: (0, 2),
                label: Some(2),
            },
        ));
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        for (f, l) in layouts() {
            let _ = load_bytes(&bytes, f, l);
        }
    }

    #[test]
    fn csv_like_text_never_panics(text in "[tpxy0-9.,\\-eNaIf \r\n]{0,120}") {
        for (f, l) in layouts() {
            let _ = load_bytes(text.as_bytes(), f, l);
        }
    }

    #[test]
    fn damaged_npy_never_panics(at in 0usize..200, byte in any::<u8>(), cut in 0usize..200) {
        let mut b = npy("<f8", false, &[3, 3], &f8(&[1.0; 9]), 1);
        if let Some(x) = b.get_mut(at) {
            *x = byte;
        }
        b.truncate(cut.max(1) * 2);
        for (_, l) in layouts() {
            let _ = load_bytes(&b, DataFormat::Npy, l);
        }
    }
}

// ---------- batching ----------

fn ramp(n: usize, id: Option<&str>) -> Trajectory {
    Trajectory {
        id: id.map(str::to_string),
        t: Array1::from_iter((0..n).map(|i| i as f64)),
        y: Array2::from_shape_fn((n, 2), |(i, j)| (10 * i + j) as f64),
    }
}

#[test]
fn windows_are_reproducible_and_in_bounds() {
    let traj = ramp(30, None);
    let draw =
        |seed| batch::windows(&traj, 200, 10, &mut batch::rng(seed, batch::BATCH_STREAM)).unwrap();
    let a = draw(7);
    assert_eq!(a, draw(7), "same seed, same windows");
    assert_ne!(a, draw(8), "another seed, other windows");
    assert_eq!(a.len(), 200);
    let mut starts = std::collections::BTreeSet::new();
    for w in &a {
        assert_eq!((w.path, w.len), (0, 10));
        assert!(w.start + w.len <= 30);
        starts.insert(w.start);
        // The views are the rows of the window, in order.
        assert_eq!(
            w.t(&traj).to_vec(),
            (w.start..w.start + 10)
                .map(|i| i as f64)
                .collect::<Vec<_>>()
        );
        assert_eq!(w.y(&traj)[[0, 1]], (10 * w.start + 1) as f64);
    }
    // 200 uniform draws over 21 starts: every start is hit (miss chance ≈ 21·(20/21)^200 < 1e-3,
    // and the draw is fixed by the seed, so this cannot flake).
    assert_eq!(starts.len(), 21);
    assert_eq!(starts.last(), Some(&20));
}

#[test]
fn windows_over_several_paths_and_their_errors() {
    let paths = [ramp(5, Some("a")), ramp(3, Some("b")), ramp(12, Some("c"))];
    let ws = batch::windows_in(&paths, 500, 4, &mut batch::rng(1, 2)).unwrap();
    let mut per_path = [0; 3];
    for w in &ws {
        per_path[w.path] += 1;
        assert!(w.start + w.len <= paths[w.path].len());
    }
    // Path b (3 observations) is too short for a window of 4; a (2 starts) and c (9) are used.
    assert_eq!(per_path[1], 0);
    assert!(per_path[0] > 0 && per_path[2] > per_path[0]);
    let too_long = batch::windows(&paths[0], 1, 6, &mut batch::rng(1, 2)).unwrap_err();
    assert_eq!(too_long.code, "glassbox::data_window_too_long");
    assert!(too_long.message.contains("longest path has 5"));
    let short = batch::windows(&paths[0], 1, 1, &mut batch::rng(1, 2)).unwrap_err();
    assert_eq!(short.code, "glassbox::data_bad_window");
    // A window as long as the path: exactly one place.
    let whole = batch::windows(&paths[0], 3, 5, &mut batch::rng(1, 2)).unwrap();
    assert!(whole.iter().all(|w| *w
        == Window {
            path: 0,
            start: 0,
            len: 5
        }));
}

#[test]
fn minibatches_are_shuffled_partitions() {
    let mut rng = batch::rng(42, batch::BATCH_STREAM);
    let e1 = batch::minibatches(10, 3, &mut rng);
    let e2 = batch::minibatches(10, 3, &mut rng);
    assert_eq!(
        e1.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![3, 3, 3, 1]
    );
    for epoch in [&e1, &e2] {
        let mut all: Vec<usize> = epoch.iter().flatten().copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>(), "a permutation");
    }
    assert_ne!(e1, e2, "each epoch reshuffles");
    let mut again = batch::rng(42, batch::BATCH_STREAM);
    assert_eq!(batch::minibatches(10, 3, &mut again), e1);
    assert_eq!(batch::minibatches(10, 3, &mut again), e2);
    assert_ne!(
        batch::permutation(50, &mut batch::rng(42, batch::SPLIT_STREAM)),
        batch::permutation(50, &mut batch::rng(42, batch::BATCH_STREAM)),
        "streams are independent"
    );
}

#[test]
fn split_sizes_and_determinism() {
    // A table of 10 rows, labelled by row number so the parts can be traced.
    let x = Array2::from_shape_fn((10, 2), |(i, j)| (i * 2 + j) as f64);
    let data = Dataset::Table {
        x,
        labels: Some((0..10).collect()),
    };
    let s = batch::split(&data, 0.8, &mut batch::rng(3, batch::SPLIT_STREAM)).unwrap();
    assert_eq!((s.train.len(), s.valid.len()), (8, 2));
    let rows = |d: &Dataset| table(d).1.clone().unwrap();
    let (tr, va) = (rows(&s.train), rows(&s.valid));
    let mut all: Vec<usize> = tr.iter().chain(&va).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..10).collect::<Vec<_>>(), "disjoint and complete");
    assert!(tr.windows(2).all(|w| w[0] < w[1]), "file order kept");
    for (i, &l) in tr.iter().enumerate() {
        assert_eq!(
            table(&s.train).0[[i, 1]],
            (l * 2 + 1) as f64,
            "rows stay with labels"
        );
    }
    assert_eq!(
        s,
        batch::split(&data, 0.8, &mut batch::rng(3, batch::SPLIT_STREAM)).unwrap()
    );
    // Extreme fractions keep one sample on each side.
    let tiny = batch::split(&data, 0.01, &mut batch::rng(3, 1)).unwrap();
    assert_eq!((tiny.train.len(), tiny.valid.len()), (1, 9));

    // Several paths: split by whole paths.
    let paths: Vec<Trajectory> = (0..5).map(|i| ramp(4, Some(&i.to_string()))).collect();
    let s = batch::split(&Dataset::trajectories(paths), 0.6, &mut batch::rng(3, 1)).unwrap();
    assert_eq!((s.train.len(), s.valid.len()), (3, 2));
    assert!(trajectories(&s.train).1.iter().all(|p| p.len() == 4));

    // One trajectory: a time prefix trains, the suffix validates.
    let one = Dataset::trajectories(vec![ramp(10, None)]);
    let s = batch::split(&one, 0.7, &mut batch::rng(3, 1)).unwrap();
    let (tt, vv) = (&trajectories(&s.train).1[0], &trajectories(&s.valid).1[0]);
    assert_eq!(tt.t, Array1::from_iter((0..7).map(f64::from)));
    assert_eq!(vv.t, array![7.0, 8.0, 9.0]);
    assert_eq!(vv.y.row(0).to_vec(), vec![70.0, 71.0]);

    let err = batch::split(
        &Dataset::trajectories(vec![ramp(3, None)]),
        0.5,
        &mut batch::rng(0, 1),
    );
    assert_eq!(err.unwrap_err().code, "glassbox::data_split_too_small");
    assert_eq!(
        batch::split(&data, 1.0, &mut batch::rng(0, 1))
            .unwrap_err()
            .code,
        "glassbox::data_bad_split"
    );
    assert_eq!(
        batch::split(&data, f64::NAN, &mut batch::rng(0, 1))
            .unwrap_err()
            .code,
        "glassbox::data_bad_split"
    );
}

#[test]
fn sampler_follows_the_batch_setting() {
    use glassbox::data::batch::{Draw, Sampler};
    use glassbox::sema::Batch;
    let x = Array2::zeros((10, 1));
    let data = Dataset::Table { x, labels: None };
    // batch = 4 over 10 rows: epochs of 4, 4, 2, each a permutation, reproducible.
    let run = |seed| {
        let mut s = Sampler::new(seed, Some(Batch::Size { n: 4 }));
        let draws: Vec<Draw> = (0..6).map(|_| s.next(&data).unwrap()).collect();
        (draws, s.epochs())
    };
    let (draws, epochs) = run(5);
    assert_eq!(epochs, 2);
    assert_eq!(run(5).0, draws);
    let samples: Vec<Vec<usize>> = draws
        .iter()
        .map(|d| match d {
            Draw::Samples(s) => s.clone(),
            Draw::Windows(_) => panic!("samples expected"),
        })
        .collect();
    assert_eq!(
        samples.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![4, 4, 2, 4, 4, 2]
    );
    for epoch in samples.chunks(3) {
        let mut all: Vec<usize> = epoch.iter().flatten().copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
    }
    // No batch setting: everything, every step.
    let mut full = Sampler::new(5, None);
    assert_eq!(full.next(&data).unwrap(), Draw::Samples((0..10).collect()));
    // Windows: B windows of L per step; on a table they are an error.
    let traj = Dataset::trajectories(vec![ramp(30, None)]);
    let mut w = Sampler::new(
        5,
        Some(Batch::Windows {
            count: 3,
            length: 10,
        }),
    );
    match w.next(&traj).unwrap() {
        Draw::Windows(ws) => assert!(ws.len() == 3 && ws.iter().all(|w| w.start + 10 <= 30)),
        Draw::Samples(_) => panic!("windows expected"),
    }
    assert_eq!(w.next(&data).unwrap_err().code, "glassbox::data_bad_window");
}
