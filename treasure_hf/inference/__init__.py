"""Trained models applied to events: ``treasure predict`` (:mod:`.predict`), the
``event-classification`` pipeline (:mod:`.pipeline`) and ONNX export (:mod:`.onnx_export`).
Nothing is imported here: each module loads torch and transformers when it is used."""
