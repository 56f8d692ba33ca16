from answers.report import settings_of


def test_settings_name_what_differs_from_the_defaults():
    assert settings_of({"num_filters": 32, "kernel": 3, "seed": 0}) is None
    assert settings_of({"num_filters": 16, "kernel": 5, "seed": 2, "lr_schedule": "cosine",
                        "warmup_epochs": 1, "hflip": True}) == (
        "NF 16, kernel 5, seed 2, cosine, 1-epoch warm-up, hflip")
    assert settings_of({"lr_schedule": "cosine"}) == "cosine"
