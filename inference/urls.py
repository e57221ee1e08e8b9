from django.urls import path

from inference import views

app_name = "inference"

urlpatterns = [
    path("", views.model_list, name="model_list"),
    path("register/", views.model_register, name="model_register"),
    path("default/", views.model_default, name="model_default"),
    path("playground/", views.playground, name="playground"),
    path("capacity/", views.capacity, name="capacity"),
]
