"""The guest's move indicator (hosts/components/guest_move.html#badge) as hosts.events pushes it (no DB)."""

from hosts import events


def pushed(**kw) -> str:
    args = {"guest_name": "web01", "percent": 42, "target_name": "hv-b", "job_url": "/migrations/9/"} | kw
    return events.render_guest_move(7, **args)


def place(html: str, where: str) -> str:
    """One place's element: the push is the row's span followed by the chip's."""
    row, chip = html.split('<span id="guest-7-move-chip"')
    assert row.startswith('<span id="guest-7-move-row"')
    return row if where == "row" else '<span id="guest-7-move-chip"' + chip


def test_a_sample_fills_row_and_chip_out_of_band():
    html = pushed()
    for where in ("row", "chip"):
        part = place(html, where)
        assert 'hx-swap-oob="true"' in part
        assert "moving → hv-b 42 %" in part
        assert '<progress max="100" value="42" aria-label="Guest migration of web01">' in part


def test_only_the_row_links_to_the_job_since_the_chip_is_a_link_itself():
    html = pushed()
    assert '<a class="badge badge--migrating" href="/migrations/9/">' in place(html, "row")
    assert "<a " not in place(html, "chip")


def test_without_a_figure_it_is_the_plain_moving_badge():
    html = pushed(percent=None)
    assert "<progress" not in html and "%" not in html
    assert "moving → hv-b</a>" in html  # the row still names the target and links to the job


def test_names_are_escaped():
    html = pushed(guest_name='<img src=x onerror="1">', target_name="<b>hv</b>")
    assert "<img" not in html and "<b>" not in html and "&lt;b&gt;hv&lt;/b&gt;" in html


def test_a_broken_channel_layer_does_not_reach_the_caller(monkeypatch):
    def boom():
        raise RuntimeError("no layer")

    monkeypatch.setattr(events.layer, "get_channel_layer", boom)
    events.guest_move_progress(7, guest_name="web01", percent=1, target_name="hv-b", job_url="/m/1/")


def test_a_template_error_does_not_reach_the_caller(monkeypatch):
    def boom(*args, **kwargs):
        raise ValueError("template broke")

    monkeypatch.setattr(events, "render_to_string", boom)
    events.guest_move_progress(7, guest_name="web01", percent=1, target_name="hv-b", job_url="/m/1/")
