"""The validation gate: ExampleValidator's anomalies and drift stop the run."""
