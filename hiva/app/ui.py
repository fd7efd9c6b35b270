"""The page: three Gradio tabs over ``DetectView``, ``CorpusView`` and ``ModelView``.

Nothing here takes a file system path from the browser: images and videos arrive as uploads
(Gradio's own temporary copies), the checkpoint and the corpus are fixed when the page is built.
A checkpoint or corpus that fails to load is a message in its tab; a bad upload or a failed step
is a message on the page (``gr.Error``), and the server keeps serving.
"""

from __future__ import annotations

import functools
import logging
import tempfile
from pathlib import Path

from hiva.app.corpus import CorpusView, corpus_of_text_bank
from hiva.app.model_info import ModelView
from hiva.errors import HivaError

log = logging.getLogger("hiva.app")

ALL = "(all)"


def _chosen(v):
    """A filter dropdown's value for the views: None for "(all)" (or nothing chosen)."""
    return None if v in (None, "", ALL) else v
MAX_FILE_SIZE = "50mb"  # per upload: a photo or a short clip


def _page_errors(fn):
    """Run a handler; a HivaError (or anything unexpected) becomes a message on the page."""
    import gradio as gr

    @functools.wraps(fn)
    def run(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except HivaError as e:
            raise gr.Error(str(e), print_exception=False) from None
        except Exception as e:  # noqa: BLE001 — the page reports it and keeps serving
            log.exception("hiva app: %s failed", fn.__name__)
            raise gr.Error(f"{type(e).__name__}: {e}", print_exception=False) from None
    return run


def _load(what: str, make):
    """(object, None) or (None, one-line reason) for a checkpoint or corpus."""
    try:
        return make(), None
    except HivaError as e:
        return None, f"The {what} could not be loaded: {e}"
    except Exception as e:  # noqa: BLE001 — shown in its tab, the page still starts
        log.exception("hiva app: loading the %s failed", what)
        return None, f"The {what} could not be loaded: {type(e).__name__}: {e}"


def _tqdm_bars_outlive_gradios_patch() -> None:
    """``gr.Progress(track_tqdm=True)`` (the video tab) replaces tqdm's methods with ones that
    read ``bar._progress``, which only bars made after that patch have. A bar made before it
    (loading the model or the encoder, or by the caller) and freed after it printed "Exception
    ignored in: tqdm.__del__ ... AttributeError" on every start. A class default covers them."""
    import tqdm

    if not hasattr(tqdm.tqdm, "_progress"):
        tqdm.tqdm._progress = None


def build(checkpoint=None, corpus=None, *, device: str = "auto", align: bool | None = None,
          max_faces: int = 4, max_video_seconds: float = 60.0, skip_frames: int = 1,
          corpus_config: str | None = None, encoder=None, title: str = "hiva"):
    """The page as a ``gradio.Blocks`` (launch it, or return it from a Space's ``app.py``); its
    ``hiva_problems`` are the lines saying what was asked for and could not be loaded.

    ``checkpoint``: a ``hiva train`` run, a ``hiva export`` folder or an export's Hub id.
    ``corpus``: a corpus folder, exported folder or Hub id; None takes the corpus the
    checkpoint's text bank was embedded from, when it is on this machine. ``encoder``: the
    sentence encoder for corpus search and identifiability (a spec for ``load_encoder``, an
    object with ``encode``, or None: the shipped MiniLM, or the text bank's when searching it).
    """
    import gradio as gr

    from hiva.app.detect import DetectView

    _tqdm_bars_outlive_gradios_patch()
    if checkpoint is None:
        view, view_err = None, ("No checkpoint: start the page with `hiva app --checkpoint "
                                "RUN|EXPORT|OWNER/NAME`.")
    else:
        view, view_err = _load("checkpoint", lambda: DetectView(
            checkpoint, device=device, align=align, max_faces=max_faces,
            max_video_seconds=max_video_seconds, skip_frames=skip_frames))
    bank = view.det.loaded.text_bank if view is not None else None
    if corpus is None and bank:
        corpus = corpus_of_text_bank(bank)
    if corpus is None:
        cview, cview_err = None, ("No corpus: start the page with `hiva app --corpus DIR|"
                                  "OWNER/NAME` (or a checkpoint whose text bank names its corpus).")
    else:
        cview, cview_err = _load("corpus", lambda: CorpusView(
            corpus, config_name=corpus_config, text_bank=bank, encoder=encoder))
    mview, mview_err = (None, view_err) if view is None else _load(
        "model details", lambda: ModelView(view.det.loaded))
    # What was asked for and failed: the page shows it in its tab, the terminal at once
    problems = [err for asked, err in ((checkpoint, view_err), (corpus, cview_err),
                                       (view, mview_err)) if asked is not None and err]
    work = Path(tempfile.mkdtemp(prefix="hiva-app-"))

    with gr.Blocks(title=title, analytics_enabled=False) as page:
        gr.Markdown(f"# {title}: facial Action Units with language priors\n"
                    + (view.describe() if view is not None else ""))
        with gr.Tab("Detect", id="detect"):
            if view is None:
                gr.Markdown(f"**{view_err}**", elem_id="detect-error")
            else:
                _detect_tab(gr, view, work)
        with gr.Tab("Corpus", id="corpus"):
            if cview is None:
                gr.Markdown(f"**{cview_err}**", elem_id="corpus-error")
            else:
                _corpus_tab(gr, cview, work)
        with gr.Tab("Model", id="model"):
            if mview is None:
                gr.Markdown(f"**{mview_err}**", elem_id="model-error")
            else:
                _model_tab(gr, mview)
    page.hiva_problems = problems
    return page


def _detect_tab(gr, view, work: Path) -> None:
    from hiva.app.detect import bar_chart, timeline, video_tracks

    faces_state = gr.State([])
    with gr.Row():
        with gr.Column(scale=1):
            image = gr.Image(label="Image (upload, paste or webcam snapshot)", type="numpy",
                             sources=["upload", "clipboard", "webcam"], elem_id="image-in")
            go_image = gr.Button("Detect AUs in the image", variant="primary",
                                 elem_id="detect-image")
            video = gr.Video(label=f"Short video (at most {view.max_video_seconds:.0f} s)",
                             sources=["upload"], elem_id="video-in")
            go_video = gr.Button("Detect AUs over the video", elem_id="detect-video")
        with gr.Column(scale=2):
            status = gr.Markdown(elem_id="detect-status")
            with gr.Row():
                face = gr.Image(label="The face the model saw", elem_id="face", height=240,
                                interactive=False, scale=1)
                with gr.Column(scale=2):
                    pick = gr.Dropdown(label="Face (largest first)", choices=[], value=None,
                                       elem_id="face-pick", interactive=True)
                    bars = gr.Plot(label="AU probabilities", elem_id="bars")
    maps = gr.Gallery(label="Where the model looked for each AU (DDCA activation map; white: "
                            "the AU's region)", columns=6, height="auto", elem_id="maps")
    table = gr.Dataframe(label="Per AU: probability and the descriptions it drew on",
                         elem_id="au-table", wrap=True)
    with gr.Column(visible=False) as video_out:  # shown once a video is scored
        person = gr.Dropdown(label="Person (track: a face followed through the video)",
                             choices=[], value=None, elem_id="track-pick", interactive=True)
        tl = gr.Plot(label="Timeline", elem_id="timeline")
        video_df = gr.State(None)
        rows = gr.Dataframe(label="Rows (as `hiva predict` writes them)", elem_id="rows",
                            max_height=300)
        csv = gr.File(label="Download the table (CSV)", elem_id="csv")

    def show(results, which):
        """The face ``which`` of ``results``: its image, chart, maps and table."""
        if not results:
            return None, None, [], None
        k = int(which) if str(which or "").isdigit() else 0
        r = results[min(k, len(results) - 1)]
        return (r.maps.face * 255).round().astype("uint8"), bar_chart(r), r.overlays(), r.table()

    @_page_errors
    def on_image(rgb, progress=gr.Progress()):
        progress(0.1, desc="finding faces and scoring")
        results = view.image(rgb)
        if not results:
            return ([], "**No face found.** Upload a clearer, frontal photo.",
                    gr.update(choices=[], value=None), None, None, [], None)
        choices = [(f"face {r.face_id}" + ("" if r.confidence != r.confidence else
                                           f" (detector {r.confidence:.2f})"), str(r.face_id))
                   for r in results]
        on = [a for a, o in zip(results[0].maps.aus, results[0].maps.on) if o]
        msg = (f"**{len(results)} face(s).** Face 0: "
               + (", ".join(f"AU{a}" for a in on) + " on" if on else "no AU on"))
        return (results, msg, gr.update(choices=choices, value="0"), *show(results, 0))

    go_image.click(on_image, [image], [faces_state, status, pick, face, bars, maps, table])
    pick.input(_page_errors(show), [faces_state, pick], [face, bars, maps, table])

    @_page_errors
    def on_video(path, progress=gr.Progress(track_tqdm=True)):
        out_csv, df = view.video(path, work / "videos")
        tracks = video_tracks(df)
        fig = timeline(df, view.aus, view.det.thresholds)
        faces_seen = int((df["success"] == 1).sum()) if "success" in df else len(df)
        msg = (f"**{df['frame'].nunique()} frames scored, {faces_seen} face rows, "
               f"{len(tracks)} people (tracks).** The timeline shows one person at a time; "
               "the table has every face.")
        choices = [(f"person {t} ({k} frames)", str(t)) for t, k in tracks]
        pick_track = gr.update(choices=choices, value=choices[0][1] if choices else None)
        return msg, gr.update(visible=True), pick_track, fig, df, str(out_csv), df

    go_video.click(on_video, [video], [status, video_out, person, tl, rows, csv, video_df])

    def show_track(df, which):
        if df is None or not str(which or "").isdigit():
            return None
        return timeline(df, view.aus, view.det.thresholds, int(which))

    person.input(_page_errors(show_track), [video_df, person], [tl])


def _corpus_tab(gr, cview, work: Path) -> None:
    ch = cview.choices()
    n = len(cview.df)
    gr.Markdown(f"**{n:,} descriptions** of {len(ch['au'])} AUs from `{cview.spec}`.")
    with gr.Tab("Browse"):
        with gr.Row():
            au = gr.Dropdown([ALL] + ch["au"], value=ALL, label="AU", elem_id="c-au")
            tmpl = gr.Dropdown([ALL] + ch["template"], value=ALL, label="Template",
                               elem_id="c-template")
            axis = gr.Dropdown([ALL] + ch["axes"], value=ALL, label="Axis",
                               elem_id="c-axis")
            llm = gr.Dropdown([ALL] + ch["llm"], value=ALL, label="LLM", elem_id="c-llm")
            contains = gr.Textbox(label="Text contains", elem_id="c-contains")

        def browse(a, t, x, m, c):
            df, total = cview.browse(_chosen(a), _chosen(t), _chosen(x), _chosen(m), c or None)
            return f"Showing {len(df):,} of {total:,} matching descriptions.", df

        first = browse(ALL, ALL, ALL, ALL, "")
        shown = gr.Markdown(first[0], elem_id="c-count")
        rows = gr.Dataframe(first[1], wrap=True, elem_id="c-rows", max_height=500)
        browse = _page_errors(browse)

        inputs = [au, tmpl, axis, llm, contains]
        for comp in inputs:
            comp.change(browse, inputs, [shown, rows])
    with gr.Tab("Search"):
        with gr.Row():
            query = gr.Textbox(label="Find descriptions like", elem_id="c-query",
                               placeholder="the inner ends of the eyebrows rise", scale=4)
            s_au = gr.Dropdown([ALL] + ch["au"], value=ALL, label="Within AU", scale=1)
            k = gr.Slider(1, 50, value=10, step=1, label="Results", scale=1)
        go = gr.Button("Search", variant="primary", elem_id="c-search")
        note = gr.Markdown(elem_id="c-note")
        found = gr.Dataframe(wrap=True, elem_id="c-found")

        @_page_errors
        def search(q, a, kk):
            df = cview.search(q, k=int(kk), au=_chosen(a))
            return f"*{cview.search_note}*" if cview.search_note else "", df

        go.click(search, [query, s_au, k], [note, found])
        query.submit(search, [query, s_au, k], [note, found])
    with gr.Tab("Stats"):
        go_s = gr.Button("Compute the corpus statistics (encodes every description once)",
                         elem_id="c-stats")
        plot = gr.Image(label="Corpus quality", type="filepath", elem_id="c-stats-plot")
        text = gr.Code(label="hiva corpus stats", language=None, elem_id="c-stats-text")

        @_page_errors
        def stats(progress=gr.Progress()):
            progress(0.1, desc="encoding the corpus")
            return str(cview.stats_plot(work / "corpus_stats.png")), cview.stats_text()

        go_s.click(stats, [], [plot, text])


def _model_tab(gr, mview) -> None:
    gr.Markdown(mview.summary(), elem_id="m-summary")
    gr.Dataframe(mview.f1_table(), label="Per-AU test F1 ×100 (subject-exclusive test split)",
                 elem_id="m-f1")
    if mview.note:
        gr.Markdown(f"*{mview.note}*")
    for path, cap in mview.curves():
        gr.Image(path, label=cap, type="filepath", interactive=False)
    with gr.Accordion("Training configuration", open=False):
        gr.Code(mview.config_text(), language="yaml", label="config", elem_id="m-config")


def require_gradio() -> None:
    """One line naming the fix when the optional extra is missing."""
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise HivaError("hiva app needs Gradio; install the extra: pip install 'hiva[app]'"
                        ) from None


def launch(page, host: str = "127.0.0.1", port: int | None = 7860, *,
           max_file_size: str = MAX_FILE_SIZE) -> str:
    """Start serving ``page`` on ``host``:``port`` (None: the first free port from 7860) and
    return its local URL without blocking (``page.block_thread()`` waits; ``page.close()``
    stops). One request at a time: the page shares one model between its users."""
    try:
        _, url, _ = page.queue(default_concurrency_limit=1).launch(
            server_name=host, server_port=port, max_file_size=max_file_size,
            prevent_thread_lock=True, quiet=True, show_error=True, share=False,
            inbrowser=False)
    except OSError as e:
        raise HivaError(f"cannot serve on {host}:{port} ({e}); pass another --port") from None
    return url
