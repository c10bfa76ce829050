"""The registry is the single source of truth and consistent with the seeds' format v0."""

from __future__ import annotations

import ast
import pathlib

import numpy as np

from treasure_hf.data import schema

PACKAGE = pathlib.Path(schema.__file__).resolve().parents[1]


def test_common_format_v0_of_the_seeds():
    names = {g: [f.name for f in fs] for g, fs in schema.COMMON.fields.items()}
    assert names["electrons"] == ["pt", "eta", "phi", "charge", "trk_iso03"]
    assert names["muons"] == ["pt", "eta", "phi", "charge", "trk_iso03"]
    assert names["taus"] == ["pt", "eta", "phi", "charge", "is_1prong"]
    assert names["photons"] == ["pt", "eta", "phi", "trk_iso03"]
    assert names["jets"] == ["pt", "eta", "phi", "mass", "n_trk"]
    assert names["tracks"] == ["pt", "eta", "phi", "d0", "z0"]
    assert names["met"] == ["pt", "phi", "sumet"]
    assert names["event"] == ["pvx", "pvy", "pvz", "mu", "experiment_id", "is_simulation"]
    assert schema.EXPERIMENTS == {"ATLAS": 0, "CMS": 1, "FCC-ee": 2}  # ids only ever appended
    assert [f.name for f in schema.COMMON.fields["constituents"]] == ["pt", "eta", "phi", "charge", "d0", "z0"]
    assert schema.GROUPS["constituents"].max_objects == 50 and schema.GROUPS["hits"].max_objects == 30


def test_units_are_gev_radians_mm():
    for layer in schema.LAYERS.values():
        for g, fields in layer.fields.items():
            for f in fields:
                assert f.unit in ("", "GeV", "rad", "mm", "ns", "1/GeV", "1/mm", "T"), (layer.name, g, f.name)
                if f.name in ("pt", "energy", "sumet", "mass") or f.name.startswith(("topoetcone", "ptcone", "ptvar")):
                    assert f.unit == "GeV", (layer.name, g, f.name)
                if f.name == "phi":
                    assert f.unit == "rad" and f.transform == "angle"
                if f.name in ("d0", "z0", "pvx", "pvy", "pvz"):
                    assert f.unit == "mm"


def test_token_type_ids_follow_the_seeds_sequence_order():
    # [CLS] [event ctx] e1 e2 [SEP] mu1 [SEP] j1 j2 ... [SEP] [MET]: specials, event, electrons, muons, jets, ..., met
    order = sorted(schema.TOKEN_TYPE_IDS, key=schema.TOKEN_TYPE_IDS.get)
    assert order[:5] == ["special", "event", "electrons", "muons", "jets"]
    assert order.index("met") > order.index("tracks")
    assert len(set(schema.TOKEN_TYPE_IDS.values())) == len(schema.TOKEN_TYPE_IDS)


def test_every_field_has_a_feature_group_and_keys_are_unique():
    keys = schema.data_keys(tuple(schema.LAYERS))
    assert len(keys) == len(set(keys))
    columns = {}
    for k in keys:
        layer, g, name = schema.split_key(k)
        assert schema.field_of(k).feature_group in schema.FEATURE_GROUPS
        col = (schema.GROUPS[g].pcdf_table, schema.pcdf_column(layer, g, name))
        assert col not in columns, (k, columns.get(col))
        columns[col] = k
        np.dtype(schema.field_of(k).dtype)


def test_atlas_layer_is_the_seeds_list():
    atlas = {g: [f.name for f in fs] for g, fs in schema.ATLAS.fields.items()}
    assert atlas["electrons"] == ["LHLoose", "LHMedium", "LHTight", "topoetcone20", "ptvarcone30", "mass"]
    assert atlas["jets"][:6] == ["DL1d_pb", "DL1d_pc", "DL1d_pu", "GN2_pb", "GN2_pc", "GN2_pu"]
    assert atlas["tracks"] == ["q0verP", "chiSquared", "nDoF"]
    assert atlas["event"] == ["event_number", "run_number", "mcChannelNumber"]
    assert set(schema.CMS.fields) == set(schema.ATLAS.fields)  # a /cms layer of the same shape


def test_metadata_attributes_of_the_issue_are_declared():
    for name in (
        "experiment",
        "format_version",
        "input_file",
        "n_events",
        "git_hash",
        "pt_cuts",
        "max_objects",
        "common_iso_cone",
        "common_iso_pt_floor_gev",
        "common_iso_z0sintheta_cut_mm",
    ):
        assert schema.METADATA[name].required


def test_no_common_field_list_is_typed_outside_the_registry():
    """A literal list of three or more common field names outside schema.py is a second feature list."""
    common_names = {f.name for fs in schema.COMMON.fields.values() for f in fs} - {"pt", "eta", "phi"}
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "schema.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
                strings = [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
                if any("." in t for t in strings):
                    continue  # a file format's member names ("momentum.x", "charge"): the file's schema, not ours
                if len(set(strings) & common_names) >= 3:
                    offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert not offenders, offenders
