"""Run and sweep reports (markdown + JSON), plots and number formatting. No hydra, no mlflow."""
