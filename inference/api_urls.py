from django.urls import path, re_path

from inference import openai_api

urlpatterns = [
    path("models", openai_api.ModelsApi.as_view(), name="v1-models"),
    path("models/<str:model_id>", openai_api.ModelApi.as_view(), name="v1-model"),
    path("chat/completions", openai_api.ChatCompletionsApi.as_view(), name="v1-chat-completions"),
    path("completions", openai_api.CompletionsApi.as_view(), name="v1-completions"),
    path("embeddings", openai_api.EmbeddingsApi.as_view(), name="v1-embeddings"),
    re_path(r"^.*$", openai_api.not_found),  # every other /v1 path: an OpenAI error object
]
