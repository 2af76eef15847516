from tracesearch import readme


def test_readme_configuration_table_matches_the_settings_module() -> None:
    text = readme.README.read_text()
    assert readme.rendered(text) == text, "run: python -c 'from tracesearch import readme; readme.update()'"
