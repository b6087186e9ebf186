"""Train, validate, test and predict from the command line.

python main.py fit --config configs/crnn.yaml --data.data_dir ../shared/data/captcha_images_v2
python main.py test --config configs/crnn.yaml --ckpt_path <best.ckpt> --data.data_dir ...
python main.py fit --help
"""

from captcha_ocr.training.lightning_cli import run

if __name__ == "__main__":
    run()
